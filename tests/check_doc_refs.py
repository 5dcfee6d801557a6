#!/usr/bin/env python3
"""Fails when a reference to docs/FILE.md or docs/FILE.md#section in the
sources (core, preload, tools, tests, examples, README.md) or in docs/ itself
does not resolve: the file must exist and the section must be one of its
headings (GitHub's anchor: lower case, spaces to '-', punctuation dropped).
Also fails on a "§" section sign left in the sources: section references
point into docs/ now.
Usage: check_doc_refs.py SOURCE_ROOT
"""
import os
import re
import sys

REF = re.compile(r'docs/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?')
LOCAL = re.compile(r'\]\(([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?\)')


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')


def anchors(path):
    out = set()
    for line in open(path, encoding='utf-8'):
        m = re.match(r'#+\s+(.*)', line)
        if m:
            out.add(slug(m.group(1)))
    return out


def main():
    os.chdir(sys.argv[1] if len(sys.argv) > 1 else '.')
    errors = []
    cache = {}

    def check(where, name, anchor):
        path = os.path.join('docs', name)
        if not os.path.exists(path):
            errors.append(f'{where}: docs/{name} does not exist')
            return
        if anchor:
            if path not in cache:
                cache[path] = anchors(path)
            if anchor not in cache[path]:
                errors.append(f'{where}: docs/{name}#{anchor}: no such section')

    files = ['README.md']
    for top in ('core', 'preload', 'tools', 'tests', 'examples', 'docs'):
        for d, _, names in os.walk(top):
            files += [os.path.join(d, n) for n in names
                      if n.endswith(('.cc', '.h', '.c', '.py', '.md', '.sh', '.build'))]
    refs = 0
    for f in sorted(files):
        if f == 'tests/check_doc_refs.py':
            continue
        text = open(f, encoding='utf-8', errors='replace').read()
        for i, line in enumerate(text.splitlines(), 1):
            for m in REF.finditer(line):
                refs += 1
                check(f'{f}:{i}', m.group(1), m.group(2))
            if f.startswith('docs/'):
                for m in LOCAL.finditer(line):
                    refs += 1
                    check(f'{f}:{i}', m.group(1), m.group(2))
            elif '§' in line and not f.endswith('.md'):
                errors.append(f'{f}:{i}: a § reference; point into docs/ instead')
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f'doc references: {len(errors)} broken', file=sys.stderr)
        return 1
    print(f'doc references ok: {refs} references in {len(files)} files')
    return 0


if __name__ == '__main__':
    sys.exit(main())
