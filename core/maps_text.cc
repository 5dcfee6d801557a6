// maps_text.cc — in progress
