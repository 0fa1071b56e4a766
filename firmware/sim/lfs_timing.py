# Modelled flash time of reading files on LittleFS (MicroPython's vfs.VfsLfs2) on an ESP32's SPI
# flash: the device reads LittleFS itself issues for file.seek() + file.readinto(), each costed
# with ESP-IDF's published flash-read figures. Sources and assumptions: docs/simulator.md
# ("LittleFS reads"). The reader's own Python around those calls is measured as CPU (x70).
#
#   m = FileMeter(f, size)     # wraps an open file: seek/read/readinto pass through, and every
#   m.seek(...); m.readinto(b) # read adds the device reads LittleFS would make to m.reads
#   m.modelled_us              # and their modelled time to modelled_us
#   read_us(size, pos, n)      # the same for one cold read of n bytes at pos, stateless
#
# What LittleFS does (littlefs lfs.c, v2): a file is a CTZ skip-list of blocks; after a seek, the
# first read finds its block by walking the list from the file's last block (lfs_ctz_find: one
# 4-byte pointer read per hop, skip = min(npw2(current - target + 1) - 1, ctz(current))), and
# every block boundary a read crosses walks it again; data come through the file's cache,
# cache_size bytes from the read position aligned down to read_size (VfsLfs2 defaults:
# read_size 32, cache_size = min(block, 4 * max(read_size, prog_size)) = 128). A seek drops the
# cache (every cold lookup misses). Pointer reads go through the read cache (read_size bytes).

BLOCK = 4096                # LittleFS block = the ESP32 flash erase sector
READ_SIZE = 32              # VfsLfs2(readsize=32) default
CACHE_SIZE = 128            # MicroPython extmod/vfs_lfsx.c: min(block, 4 * max(read, prog))
# esp_flash_read on a classic ESP32 (ESP-IDF components/idf_test/include/esp32/
# idf_performance_target.h, thresholds "about 70 % of the average test data"): 4-byte reads
# at >= 35,200 B/s (<= 113.6 us each) and 2 KiB reads at >= 6,650,000 B/s (<= 308 us each).
# A straight line through both: a fixed cost per call and a cost per byte (conservative: these
# are minimum speeds).
FLASH_CALL_US = 113.2
FLASH_US_PER_BYTE = 0.0951


def device_read_us(n):
    return FLASH_CALL_US + n * FLASH_US_PER_BYTE


def _popc(x):
    n = 0
    while x:
        x &= x - 1
        n += 1
    return n


def _ctz(x):
    n = 0
    while x and not x & 1:
        x >>= 1
        n += 1
    return n


def _npw2(x):
    # ceil(log2(x)) as littlefs's lfs_npw2
    n = 0
    while (1 << n) < x:
        n += 1
    return n


def ctz_index(off):
    """(block index, offset in that block) of file position off (lfs_ctz_index)."""
    b = BLOCK - 2 * 4
    i = off // b
    if i == 0:
        return 0, off
    i = (off - 4 * (_popc(i - 1) + 2)) // b
    return i, off - b * i - 4 * _popc(i)


def ctz_hops(size, pos):
    """Pointer reads lfs_ctz_find makes to reach the block of pos in a file of size bytes."""
    if size == 0:
        return 0
    current = ctz_index(size - 1)[0]
    target = ctz_index(pos)[0]
    hops = 0
    while current > target:
        skip = min(_npw2(current - target + 1) - 1, _ctz(current))
        current -= 1 << skip
        hops += 1
    return hops


def read_plan(size, pos, n):
    """The device reads (byte counts) of one cold read of n bytes at pos of a size-byte file."""
    out = []
    end = min(pos + n, size)
    block = -1
    cached_to = -1          # file position up to which the file cache holds data
    while pos < end:
        i, off = ctz_index(pos)
        if i != block:
            out += [READ_SIZE] * ctz_hops(size, pos)
            block = i
            cached_to = -1
        if pos >= cached_to:
            start = off - off % READ_SIZE
            k = min(CACHE_SIZE, BLOCK - start)
            out.append(k)
            cached_to = pos + (start + k - off)
        step = min(end, cached_to) - pos
        pos += step if step > 0 else 1
    return out


def read_us(size, pos, n):
    t = 0.0
    for k in read_plan(size, pos, n):
        t += device_read_us(k)
    return t


class FileMeter:
    """An open file whose reads are costed as LittleFS would make them (see the header): every
    seek starts cold, a read continues from the position and the cache the last one left."""

    def __init__(self, f, size):
        self.f = f
        self.size = size
        self.pos = 0
        self.cold = True
        self.modelled_us = 0.0
        self.reads = 0

    def seek(self, pos, whence=0):
        self.pos = self.f.seek(pos, whence)
        self.cold = True
        return self.pos

    def _count(self, n):
        plan = read_plan(self.size, self.pos, n)
        if not self.cold and plan:
            plan = plan[1:]     # a sequential read continues in the cached chunk (approx.)
        for k in plan:
            self.modelled_us += device_read_us(k)
        self.reads += len(plan)
        self.cold = False

    def readinto(self, buf):
        self._count(len(buf))
        k = self.f.readinto(buf)
        self.pos += k or 0
        return k

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        self._count(n)
        b = self.f.read(n)
        self.pos += len(b)
        return b

    def close(self):
        self.f.close()
