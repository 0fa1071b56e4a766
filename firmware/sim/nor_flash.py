# A NOR-flash partition for the event journal, behind MicroPython's extended block-device
# protocol (the one esp32.Partition implements):
#   readblocks(block, buf, offset=0)   read len(buf) bytes at block * block_size + offset
#   writeblocks(block, buf, offset)    program without erase: a bit only goes 1 -> 0
#   ioctl(op, arg)                     4 = block count, 5 = block size, 6 = erase block arg
# As on esp32.Partition, an access may run past the end of its block into the next one; it may
# not run past the end of the partition.
#
# NOR semantics: the erased state is 0xFF; programming ANDs the new bytes into the old ones
# (asking for a 0 -> 1 change is silently ignored, like real NOR); only an erase sets bits back.
# Wear: erase and program-operation counters per block.
#
# Power-cut injection (deterministic from the seed):
#   cut_after(n, partial=False, page=False)  the n-th unit of work from now is the last one
#       that happens. One programmed byte is one unit; one block erase is `erase_units` units.
#       If the n-th unit is a programmed byte, that byte lands (only some of the bits it clears
#       if partial=True) and nothing after it. With page=True the cut interrupts the program of
#       the 256-byte page holding that byte instead: every byte of the write in that page keeps
#       only some of the bits it clears (real NOR programs a page at once, not byte by byte).
#       If the n-th unit falls inside an erase, the erase is interrupted and leaves the block
#       untouched, every byte partly erased (random bits set), mostly erased, or with one
#       stretch changed (erased, or partly zeroed by the pre-program phase) and the rest intact.
#       The operation that hits the cut raises PowerCut, and so does every later operation.
#   power_on()  ends the outage: operations work again (the contents are what the cut left).
# Modelled device time (`modelled_us`): W25Q32JV-class figures, see docs/journal.md.


class PowerCut(Exception):
    pass


# Modelled time of the real part (W25Q32JV data sheet, typical) plus ESP-IDF call overhead.
PROG_FIRST_BYTE_US = 30.0    # tBP1
PROG_NEXT_BYTE_US = 2.5      # tBP2
PAGE = 256                   # a program never crosses a 256-byte page: the driver splits it
ERASE_4K_US = 45000.0        # tSE typical (400 ms maximum)
READ_MB_S = 20.0             # 40 MHz quad I/O, roughly
CALL_US = 20.0               # esp_partition_* call: cache disable/enable, SPI setup (estimate)


class NorFlash:
    def __init__(self, blocks=16, block_size=4096, seed=1, erase_units=256):
        if blocks < 1 or block_size < 16:
            raise ValueError("bad geometry")
        self.blocks = blocks
        self.block_size = block_size
        self.size = blocks * block_size
        self.mem = bytearray(b"\xff" * self.size)
        self.erase_units = erase_units
        self.erase_count = [0] * blocks
        self.write_count = [0] * blocks      # program operations touching the block
        self.bytes_programmed = 0
        self.bytes_read = 0
        self.reads = 0
        self.writes = 0
        self.erases = 0
        self.units = 0                       # units of work done (bytes programmed + erases)
        self.modelled_us = 0.0
        self.cuts = 0
        self.last_cut = ""                   # "write" or "erase": where the last cut landed
        # Per block: offset from which the block is known to be erased (0xFF) since its last
        # erase. Programs above it are plain copies, which keeps the simulator fast.
        self._clean = [0] * blocks
        self._budget = -1                    # -1: no cut armed
        self._partial = False
        self._page = False
        self._dead = False
        self._rs = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1

    # ---- deterministic randomness (xorshift32) ---------------------------------------------

    def _rand(self):
        x = self._rs
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._rs = x
        return x

    # ---- power ---------------------------------------------------------------------------

    def cut_after(self, n, partial=False, page=False):
        if n < 1:
            raise ValueError("n >= 1")
        self._budget = n
        self._partial = partial
        self._page = page

    def disarm(self):
        self._budget = -1

    def power_on(self):
        self._dead = False
        self._budget = -1

    @property
    def dead(self):
        return self._dead

    def _check(self):
        if self._dead:
            raise PowerCut("power is off")

    def _die(self):
        self._dead = True
        self._budget = -1
        self.cuts += 1
        raise PowerCut("power cut")

    # ---- block-device protocol -----------------------------------------------------------

    def _addr(self, block, offset, n):
        a = block * self.block_size + offset
        if block < 0 or offset < 0 or a + n > self.size:
            raise OSError(22)  # EINVAL, as esp32.Partition reports a bad range
        return a

    def readblocks(self, block, buf, offset=0):
        self._check()
        n = len(buf)
        a = self._addr(block, offset, n)
        buf[0:n] = memoryview(self.mem)[a:a + n]
        self.reads += 1
        self.bytes_read += n
        self.modelled_us += CALL_US + n / READ_MB_S

    def writeblocks(self, block, buf, offset=0):
        self._check()
        n = len(buf)
        a = self._addr(block, offset, n)
        self.writes += 1
        # modelled time: one program per 256-byte page touched
        p = a
        end = a + n
        while p < end:
            q = min(end, (p // PAGE + 1) * PAGE)
            self.modelled_us += PROG_FIRST_BYTE_US + PROG_NEXT_BYTE_US * (q - p - 1)
            p = q
        self.modelled_us += CALL_US
        if self._budget < 0 or self._budget > n:
            if self._budget > 0:
                self._budget -= n
            self._program(a, buf, 0, n)
            self.units += n
            return
        # the cut lands in this write
        k = self._budget
        self.units += k
        if self._page:
            # the page program that holds byte k is interrupted: each of its bytes keeps only
            # some of the bits it was clearing; the pages before it are done
            ps = max(a, ((a + k - 1) // PAGE) * PAGE)
            pe = min(a + n, ((a + k - 1) // PAGE + 1) * PAGE)
            self._program(a, buf, 0, ps - a)
            self._program_partly(a, buf, ps - a, pe - a)
        elif self._partial:
            self._program(a, buf, 0, k - 1)
            self._program_partly(a, buf, k - 1, k)
        else:
            self._program(a, buf, 0, k)
        self.last_cut = "write"
        self._die()

    def _program(self, a, buf, i, stop):
        """Program buf[i:stop] at a + i: AND into the old contents."""
        bs = self.block_size
        mem = self.mem
        self.bytes_programmed += stop - i
        while i < stop:
            blk = (a + i) // bs
            self.write_count[blk] += 1
            start = a + i - blk * bs
            k = min(stop - i, bs - start)
            clean = self._clean[blk]
            if start >= clean:
                # erased since the last erase: AND with 0xFF is a plain copy
                mem[a + i:a + i + k] = buf[i:i + k]
            else:
                j = 0
                top = min(k, clean - start)
                while j < top:
                    mem[a + i + j] &= buf[i + j]
                    j += 1
                if top < k:
                    mem[a + i + top:a + i + k] = buf[i + top:i + k]
            if start + k > clean:
                self._clean[blk] = start + k
            i += k

    def _program_partly(self, a, buf, i, stop):
        """buf[i:stop] lands partly: a random subset of the bits each byte clears."""
        bs = self.block_size
        mem = self.mem
        while i < stop:
            p = a + i
            blk = p // bs
            mem[p] &= buf[i] | (self._rand() & 0xFF)
            if p - blk * bs >= self._clean[blk]:
                self._clean[blk] = p - blk * bs + 1
            i += 1

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            self._check()
            self.erase(arg)
            return 0
        if op in (1, 2, 3):
            return 0
        return None

    def erase(self, block):
        self._check()
        if block < 0 or block >= self.blocks:
            raise OSError(22)
        self.erases += 1
        self.modelled_us += CALL_US + ERASE_4K_US * self.block_size / 4096
        bs = self.block_size
        a = block * bs
        u = self.erase_units
        if self._budget >= 0:
            if self._budget < u:
                self._torn_erase(a, self._budget, u)
                self.units += self._budget
                self.last_cut = "erase"
                self._die()
            self._budget -= u
        self.mem[a:a + bs] = b"\xff" * bs
        self.erase_count[block] += 1
        self._clean[block] = 0
        self.units += u
        if self._budget == 0:
            self.last_cut = "erase"
            self._die()

    def _torn_erase(self, a, done, total):
        bs = self.block_size
        self._clean[a // bs] = bs
        mode = self._rand() % 5
        mem = self.mem
        if mode == 0:
            return  # the erase had not started changing cells
        if mode == 1:
            # every byte partly erased
            for i in range(a, a + bs):
                mem[i] |= self._rand() & 0xFF
            return
        if mode == 2:
            # mostly erased: a byte keeps partly erased old data with probability (total-done)/total
            for i in range(a, a + bs):
                if self._rand() % total < total - done:
                    mem[i] |= self._rand() & 0xFF
                else:
                    mem[i] = 0xFF
            return
        # uneven progress: one stretch of the block changed, the rest untouched
        x = self._rand() % bs
        y = x + 1 + self._rand() % (bs - x)
        for i in range(a + x, a + y):
            if mode == 3:
                mem[i] = 0xFF if self._rand() & 1 else mem[i] | (self._rand() & 0xFF)
            else:
                # the pre-program phase (cells driven to 0 before the erase pulses) was cut
                mem[i] &= self._rand() & 0xFF

    # ---- inspection ----------------------------------------------------------------------

    def wear(self):
        """(min, max, total) erase counts over the blocks."""
        return min(self.erase_count), max(self.erase_count), sum(self.erase_count)
