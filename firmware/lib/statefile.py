# Small files in the reader's state folder (LittleFS on the device, a folder under the unix port):
# whole-file replacement through a temporary file and os.rename, so a power cut leaves either the
# old or the new contents, never a mix. LittleFS renames over an existing file atomically; on a
# file system that refuses that (FAT), the old file is removed first and readers fall back to the
# ".new" copy, which callers validate (signed blobs, checksummed counters) before trusting it.
import os

TMP = ".new"


def path(folder, name):
    return folder + "/" + name


def read(p, limit):
    """The file's bytes (at most limit), or None when it is missing, unreadable or too long."""
    for q in (p, p + TMP):
        try:
            with open(q, "rb") as f:
                data = f.read(limit + 1)
        except OSError:
            continue
        if len(data) <= limit:
            return data
        return None
    return None


def write(p, data):
    """Replace p with data atomically (OSError when the file system fails)."""
    tmp = p + TMP
    with open(tmp, "wb") as f:
        f.write(data)
    replace(tmp, p)


def replace(src, dst):
    try:
        os.rename(src, dst)
    except OSError:
        _unlink(dst)
        os.rename(src, dst)


def _unlink(p):
    try:
        os.remove(p)
    except OSError:
        pass


def remove(p):
    """Remove p and any temporary copy of it."""
    _unlink(p)
    _unlink(p + TMP)


def size(p):
    """Size in bytes, or -1 when the file does not exist."""
    try:
        return os.stat(p)[6]
    except OSError:
        return -1


def next_boot(folder):
    """Count this boot: the stored counter plus one, written back before it is used.

    Events carry the boot counter so the gateway can anchor a clock-unset reader's uptime to
    true time per boot; a counter that restarted at the same value after a reset would mix two
    boots' uptimes. A missing or unreadable file counts from 1 (a new reader)."""
    p = path(folder, "boot")
    data = read(p, 12)
    n = 0
    if data:
        try:
            n = int(data)
        except ValueError:
            n = 0
    n = n + 1 if 0 <= n < 0x7FFFFFFF else 1
    try:
        write(p, str(n).encode())
    except OSError:
        pass  # a full or failing file system must not stop the door; the gateway still orders by seq
    return n
