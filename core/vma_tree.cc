// vma_tree.cc — in progress
