#!/usr/bin/env python3
"""unicode_gen.py - generates unicode_tables.h, the character classes of GPT-2's
pre-tokenizer regex

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

over all of Unicode, from the Unicode Character Database:

    letters  \\p{L} = General_Category Lu, Ll, Lt, Lm, Lo   (UnicodeData.txt)
    numbers  \\p{N} = General_Category Nd, Nl, No           (UnicodeData.txt)
    spaces   \\s    = the White_Space property              (PropList.txt)

(\\s is White_Space because that is what the Python `regex` module, which
GPT-2's encoder.py used, means by \\s on str patterns; note that it differs from
Python's str.isspace, which also accepts U+001C..U+001F.)

Input: /usr/share/unicode/UnicodeData.txt and /usr/share/unicode/PropList.txt,
from Debian's `unicode-data` package (Unicode 15.0.0; `apt-get install
unicode-data`). Another directory can be given as the only argument.
Regenerate with:

    python3 unicode_gen.py > unicode_tables.h

Python 3 standard library only; no network. The output is deterministic: the
same input files give the same bytes. It owns nothing at run time: unicode.c
reads the tables it writes. It must never guess: any line it does not
understand, an unpaired <..., First>/<..., Last> range, or classes that
overlap stop it with an error and no output.
"""

import os
import re
import sys

LETTER_GC = ("Lu", "Ll", "Lt", "Lm", "Lo")
NUMBER_GC = ("Nd", "Nl", "No")
MAX_CP = 0x10FFFF
PER_LINE = 4  # ranges per output line


def die(msg):
    sys.stderr.write("unicode_gen.py: %s\n" % msg)
    sys.exit(1)


def parse_cp(text, where):
    if not re.fullmatch(r"[0-9A-F]{4,6}", text):
        die("%s: bad code point %r" % (where, text))
    cp = int(text, 16)
    if cp > MAX_CP:
        die("%s: code point %s above U+10FFFF" % (where, text))
    return cp


def read_unicode_data(path):
    """Return {general category: list of (lo, hi)} from UnicodeData.txt, with the
    <..., First>/<..., Last> pairs expanded to one range each."""
    by_gc = {}
    pending = None  # (first code point, range name, gc, line number) of a "<..., First>"
    prev_cp = -1
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            where = "%s:%d" % (path, lineno)
            fields = line.split(";")
            if len(fields) != 15:
                die("%s: expected 15 fields, got %d" % (where, len(fields)))
            cp = parse_cp(fields[0], where)
            name, gc = fields[1], fields[2]
            if not re.fullmatch(r"[A-Z][a-z]", gc):
                die("%s: bad general category %r" % (where, gc))
            if cp <= prev_cp:
                die("%s: code points not ascending" % where)
            prev_cp = cp
            if pending is not None:
                first, rname, rgc, rline = pending
                if name != "<%s, Last>" % rname or gc != rgc:
                    die("%s: <%s, First> on line %d is not followed by its Last" % (where, rname, rline))
                by_gc.setdefault(gc, []).append((first, cp))
                pending = None
                continue
            m = re.fullmatch(r"<(.+), First>", name)
            if m:
                pending = (cp, m.group(1), gc, lineno)
                continue
            if name.endswith(", Last>"):
                die("%s: <..., Last> without a First" % where)
            by_gc.setdefault(gc, []).append((cp, cp))
    if pending is not None:
        die("%s: file ends inside <%s, First>" % (path, pending[1]))
    return by_gc


def read_prop_list(path, prop):
    """Return (version, list of (lo, hi)) for one binary property of PropList.txt."""
    ranges = []
    version = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            where = "%s:%d" % (path, lineno)
            if lineno == 1:
                m = re.fullmatch(r"# PropList-(\d+\.\d+\.\d+)\.txt\s*", line)
                if not m:
                    die("%s: expected the '# PropList-X.Y.Z.txt' header" % where)
                version = m.group(1)
            data = line.split("#", 1)[0].strip()
            if not data:
                continue
            m = re.fullmatch(r"([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*(\w+)", data)
            if not m:
                die("%s: cannot parse %r" % (where, data))
            if m.group(3) != prop:
                continue
            lo = parse_cp(m.group(1), where)
            hi = parse_cp(m.group(2), where) if m.group(2) else lo
            if hi < lo:
                die("%s: empty range" % where)
            ranges.append((lo, hi))
    return version, ranges


def merge(ranges):
    """Sort and merge overlapping or adjacent ranges."""
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def size(ranges):
    return sum(hi - lo + 1 for lo, hi in ranges)


def check_disjoint(a_name, a, b_name, b):
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i][1] < b[j][0]:
            i += 1
        elif b[j][1] < a[i][0]:
            j += 1
        else:
            die("%s and %s overlap near U+%04X" % (a_name, b_name, max(a[i][0], b[j][0])))


def emit_table(out, name, ranges):
    out.append("#define %s_COUNT %d" % (name.upper(), len(ranges)))
    out.append("static const uint32_t %s[%s_COUNT][2] = {" % (name, name.upper()))
    for k in range(0, len(ranges), PER_LINE):
        chunk = ranges[k:k + PER_LINE]
        out.append("    " + " ".join("{0x%05X, 0x%05X}," % r for r in chunk))
    out.append("};")
    out.append("")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
    if len(sys.argv) > 2:
        die("usage: python3 unicode_gen.py [UCD directory] > unicode_tables.h")
    by_gc = read_unicode_data(os.path.join(src, "UnicodeData.txt"))
    version, spaces = read_prop_list(os.path.join(src, "PropList.txt"), "White_Space")
    letters = merge([r for gc in LETTER_GC for r in by_gc.get(gc, [])])
    numbers = merge([r for gc in NUMBER_GC for r in by_gc.get(gc, [])])
    spaces = merge(spaces)
    if not letters or not numbers or not spaces:
        die("an empty class: wrong input files?")
    check_disjoint("letters", letters, "numbers", numbers)
    check_disjoint("letters", letters, "spaces", spaces)
    check_disjoint("numbers", numbers, "spaces", spaces)

    out = [
        "/* unicode_tables.h - GENERATED by unicode_gen.py from Unicode %s"
        " (UnicodeData.txt, PropList.txt): do not edit by hand. */" % version,
        "/* Regenerate: python3 unicode_gen.py > unicode_tables.h  (Debian package unicode-data)",
        " *",
        " * Character classes of GPT-2's pre-tokenizer regex, as inclusive code point",
        " * ranges {first, last}: sorted, merged (no two ranges overlap or touch) and",
        " * pairwise disjoint between the three tables. Everything else is 'other'.",
        " *   uni_letter_ranges  \\p{L}: General_Category Lu Ll Lt Lm Lo  %7d code points" % size(letters),
        " *   uni_number_ranges  \\p{N}: General_Category Nd Nl No        %7d code points" % size(numbers),
        " *   uni_space_ranges   \\s:    White_Space                      %7d code points" % size(spaces),
        " * Included only by unicode.c (and its test). */",
        "#ifndef DPO_UNICODE_TABLES_H",
        "#define DPO_UNICODE_TABLES_H",
        "",
        "#include <stdint.h>",
        "",
        '#define UNI_TABLES_UNICODE_VERSION "%s"' % version,
        "",
    ]
    emit_table(out, "uni_letter_ranges", letters)
    emit_table(out, "uni_number_ranges", numbers)
    emit_table(out, "uni_space_ranges", spaces)
    out.append("#endif")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
