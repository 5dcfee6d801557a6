"""A small, deterministic Python workload for the preload's integration tests.

Exercises what makes CPython map memory: many objects (pymalloc arenas, which
are 1 MiB mmaps in 3.11), large buffers (malloc's mmap threshold), json and
zlib (C extension modules loaded with dlopen), an anonymous and a file-backed
mmap, and threads (pthread stacks). Prints only results that do not depend
on the layout or the scheduler, so stdout is identical natively and under
`vmashadow run`.
"""
import hashlib
import json
import mmap
import os
import tempfile
import threading
import zlib

# Objects: lists of dicts, json round trip.
data = [{'k': i, 'v': str(i) * (i % 17), 'f': i / 7} for i in range(30000)]
text = json.dumps(data, sort_keys=True)
back = json.loads(text)
assert back == data
print('json', len(text), hashlib.sha256(text.encode()).hexdigest()[:16])

# zlib: compress and decompress at several levels.
raw = text.encode()
sizes = []
for level in (1, 6, 9):
    packed = zlib.compress(raw, level)
    assert zlib.decompress(packed) == raw
    sizes.append(len(packed))
print('zlib', sizes)

# Anonymous mmap, grown with resize (mremap).
m = mmap.mmap(-1, 1 << 20)
m.write(zlib.compress(raw))
m.resize(8 << 20)
m.seek(0)
assert zlib.decompress(m.read(sizes[1])) == raw
m.close()

# File-backed mmap of a temporary file.
with tempfile.TemporaryFile() as f:
    f.write(raw)
    f.flush()
    fm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    count = fm[:].count(b'"k"')
    fm.close()
print('mmap', count)

# Large buffers (each above malloc's mmap threshold), made and dropped.
blocks = [bytearray(os.urandom(16)) * (1 << 16) for _ in range(24)]
print('blocks', sum(len(b) for b in blocks))
del blocks

# Threads, each with its own work; results joined in order.
results = [None] * 8


def work(i):
    items = {j: str(j * i) for j in range(20000)}
    results[i] = hashlib.md5(json.dumps(items).encode()).hexdigest()[:8]


threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print('threads', results)
