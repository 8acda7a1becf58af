#!/usr/bin/env python3
"""Builds the benchmark mailbox: N real messages from the corpus (fixtures/corpus/), as maildir files.

The corpus (*.eml files, one message each, and mbox files; about 1,400 messages) is read in a fixed order and
repeated in rounds until N messages are written. Round 0 keeps every message as it is;
round R >= 1 appends ".rR" inside the angle brackets of every id in Message-ID, References
and In-Reply-To, so each copy is a distinct message that threads with the other copies of
its own round, and " (rR)" to the Subject, so that subject-based threading (same sender,
same normalized subject, dates within a window: the copies keep their Date) does not join
the copies of different rounds into conversations eight times as long as real ones.

Every message must end up with exactly one usable, unique Message-ID, or a syncer that
dedupes by Message-ID (as it should) stores fewer rows than the server holds and the count
check cannot tell a lost message from a deduplicated one. So a message without a
Message-ID, with a malformed one (no angle brackets, whitespace), with several, or with
the same one as an earlier corpus message gets a generated first header
"Message-ID: <sb-bench-INDEX.rR@bench.invalid>" (its other headers are kept). The number
of such messages is printed.

Files go to MAILDIR/cur/ with names that sort in corpus order (Dovecot gives new maildir
files UIDs in file-name order), flags ":2," (unseen) and S=<size>, mtime = a fixed base
plus the index (the INTERNALDATE).

Usage: build_mailbox.py CORPUS_DIR MAILDIR N
Prints one line of JSON: messages, bytes, corpus_messages, rounds, generated_ids.
"""

import json
import os
import re
import sys

SKIP_SUFFIXES = (".txt", ".md", ".json", ".py", ".sh", ".pl")
ID_HEADERS = re.compile(rb"^(message-id|references|in-reply-to)[ \t]*:", re.I)
SUBJECT_HEADER = re.compile(rb"^subject[ \t]*:", re.I)
MSGID_HEADER = re.compile(rb"^message-id[ \t]*:", re.I)
ANGLE = re.compile(rb"<([^<>]*)>")
GOOD_ID = re.compile(rb"<[^<>\s\x00-\x1f\x7f]+>")


def split_mbox(data):
    """Messages of an mbox (mboxo/mboxrd): a line "From " after a blank line (or at the
    start) begins a message; the From_ line itself is dropped, the rest kept byte for byte
    (a ">From " quoted line stays as it is)."""
    out = []
    start = None
    pos = 0
    prev_blank = True
    n = len(data)
    while pos < n:
        end = data.find(b"\n", pos)
        end = n if end < 0 else end + 1
        line = data[pos:end]
        if prev_blank and line.startswith(b"From "):
            if start is not None:
                out.append(data[start:pos])
            start = end
        prev_blank = line.strip() == b""
        pos = end
    if start is not None:
        out.append(data[start:])
    # The blank line that separates mbox messages belongs to the format, not the message.
    cleaned = []
    for m in out:
        if m.endswith(b"\r\n\r\n"):
            m = m[:-2]
        elif m.endswith(b"\n\n"):
            m = m[:-1]
        cleaned.append(m)
    return cleaned


def load_corpus(root):
    msgs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(SKIP_SUFFIXES) or name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                data = f.read()
            if len(data) < 16:
                continue  # empty/size-test files, not mail
            if name.endswith(".eml"):
                # One message; some start with an mbox envelope line ("From sender date").
                if data.startswith(b"From "):
                    data = data[data.find(b"\n") + 1 :]
                msgs.append(data)
            elif data.startswith(b"From "):
                msgs.extend(m for m in split_mbox(data) if m.strip())
            else:
                msgs.append(data)
    return msgs


def header_block(msg):
    """(header lines, rest): header lines end at the first empty line (kept in rest)."""
    lines = msg.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line in (b"\n", b"\r\n", b"\r"):
            return lines[:i], b"".join(lines[i:])
    return lines, b""


def unfolded_fields(lines):
    """[(start index, end index exclusive, unfolded bytes)] of the header fields."""
    fields = []
    i = 0
    while i < len(lines):
        j = i + 1
        while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
            j += 1
        fields.append((i, j, b"".join(l.rstrip(b"\r\n") for l in lines[i:j])))
        i = j
    return fields


def message_ids(lines):
    """Values of the Message-ID fields (stripped)."""
    out = []
    for _, _, text in unfolded_fields(lines):
        if MSGID_HEADER.match(text):
            out.append(text.split(b":", 1)[1].strip())
    return out


def prepare(corpus):
    """Per corpus message: (message, needs a generated id)."""
    seen = set()
    out = []
    for msg in corpus:
        lines, _ = header_block(msg)
        ids = message_ids(lines)
        usable = len(ids) == 1 and GOOD_ID.fullmatch(ids[0]) is not None
        key = ids[0].lower() if usable else None
        fresh = usable and key not in seen
        if usable:
            seen.add(key)
        out.append((msg, not fresh))
    return out


def copy_of(msg, index, rnd, generated):
    lines, rest = header_block(msg)
    eol = b"\r\n" if (lines and lines[0].endswith(b"\r\n")) else b"\n"
    if rnd > 0:
        suffix = b".r%d" % rnd
        for start, end, _ in unfolded_fields(lines):
            if ID_HEADERS.match(lines[start]):
                for k in range(start, end):
                    lines[k] = ANGLE.sub(
                        lambda m: b"<" + m.group(1) + suffix + b">" if m.group(1).strip() else m.group(0),
                        lines[k],
                    )
            elif SUBJECT_HEADER.match(lines[start]):
                last = lines[end - 1]
                body = last.rstrip(b"\r\n")
                lines[end - 1] = body + b" (r%d)" % rnd + last[len(body):]
    head = b"".join(lines)
    if generated:
        head = b"Message-ID: <sb-bench-%d.r%d@bench.invalid>" % (index, rnd) + eol + head
    return head + rest


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    corpus_dir, maildir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    corpus = prepare(load_corpus(corpus_dir))
    if not corpus:
        sys.exit(f"no messages found in {corpus_dir}")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    base = 1_600_000_000
    total = 0
    generated_count = 0
    ids = set()
    for i in range(n):
        rnd, k = divmod(i, len(corpus))
        msg, generated = corpus[k]
        data = copy_of(msg, k, rnd, generated)
        generated_count += generated
        first = message_ids(header_block(data)[0])[0].lower()
        if first in ids:
            sys.exit(f"duplicate Message-ID {first!r} at message {i}")
        ids.add(first)
        name = "%d.M%06dP1.bench,S=%d:2," % (base + i, i, len(data))
        path = os.path.join(maildir, "cur", name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (base + i, base + i))
        total += len(data)
    print(json.dumps({
        "messages": n,
        "bytes": total,
        "corpus_messages": len(corpus),
        "rounds": (n + len(corpus) - 1) // len(corpus),
        "generated_ids": generated_count,
    }))


if __name__ == "__main__":
    main()
