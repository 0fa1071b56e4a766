# Event journal on a raw NOR-flash partition (docs/journal.md).
#
# An append-only log of records in a ring of erase blocks ("sectors"), reached through the
# extended block-device protocol of esp32.Partition (readblocks/writeblocks with an offset,
# ioctl 4/5/6); under the unix port and CPython the simulator sim.nor_flash.NorFlash.
#
# Sector  = header (20 B) + records.
#   header: "CJL1" | sector_seq u32 | first_seq u32 | erase_count u32 | crc32 of the 16 bytes before
#   sector_seq counts sector openings (the ring order); first_seq is the sequence number the first
#   record of the sector gets; erase_count is the wear of this physical sector.
# Record  = magic 0xA7 | length u16 | seq u32 | payload | crc32 u32 | delivered u8   (12 B + payload)
#   The CRC covers magic..payload and is programmed last in the same write, so a torn record never
#   checks; `delivered` is outside the CRC and stays 0xFF until ack() programs it to 0x00 in place
#   (NOR lets a bit go 1 -> 0 without an erase). Any value but 0xFF reads as delivered.
#
# Invariants the code keeps:
# - sequence numbers are dense: append returns last + 1; a record whose write did not finish is
#   never valid, so its number is simply issued again to the next record after a reboot;
# - delivered flags form a prefix (ack flags records in order), so the delivered point is the
#   highest flagged record, or, once its sector is reclaimed, first_seq(oldest live sector) - 1;
# - only sectors whose records are all delivered are ever erased, and their header is zeroed
#   before the erase, so an interrupted erase cannot bring back half-erased records;
# - recovery only reads; its cost is bounded by the partition geometry, not by the record count;
# - RAM: a few integers and three fixed buffers (~800 B), whatever the number of records.
import binascii
import struct

SECTOR_MAGIC = b"CJL1"
SHDR = 20                 # sector header bytes
REC_MAGIC = 0xA7
RHDR = 7                  # magic + length + seq
ROVER = 12                # record overhead: RHDR + crc 4 + delivered flag 1
MAX_PAYLOAD = 512         # format limit on a record's payload
SEQ_LIMIT = 0xFFFFFFFF    # u32: at one event a second that lasts 136 years

_crc32 = binascii.crc32
_pack_into = struct.pack_into
_unpack_from = struct.unpack_from
_FF = b"\xff" * 256
_ZERO_SHDR = bytes(SHDR)
_FLAG_DONE = b"\x00"


class JournalFull(Exception):
    """Every sector holds undelivered records: the new record was not stored (nothing was
    dropped). The application raises the journal_full alarm and keeps deciding offline."""


class Journal:
    def __init__(self, flash, max_payload=MAX_PAYLOAD, high_water=90, first_seq=1):
        self._f = flash
        self._n = flash.ioctl(4, 0)
        self._bs = flash.ioctl(5, 0)
        if max_payload < 0 or max_payload > MAX_PAYLOAD:
            raise ValueError("max_payload")
        if self._n < 2 or self._bs < SHDR + ROVER + max_payload:
            raise ValueError("journal partition too small")
        if high_water < 1 or high_water > 100:
            raise ValueError("high_water")
        if first_seq < 1 or first_seq > SEQ_LIMIT:
            raise ValueError("first_seq")
        self._seq0 = first_seq
        self._maxp = max_payload
        self._hw = high_water
        self._buf = bytearray(ROVER + MAX_PAYLOAD)
        self._mv = memoryview(self._buf)
        self._sh = bytearray(SHDR)
        self._chk = bytearray(len(_FF))
        self._s_sseq = self._s_first = self._s_ec = 0   # last sector header parsed
        self._r_seq = self._r_flag = 0                  # last record parsed
        self._l_sec = self._l_off = 0                   # last record located
        self._csec = self._coff = 0
        self._cn = -1                                   # payload length at the cursor, -1: unknown
        # counters since boot
        self.appends = 0
        self.acks = 0
        self.erases = 0
        self.full_events = 0
        self.lost = 0
        self.recover()

    # ---- low-level reads ---------------------------------------------------------------------

    def _sector(self, i):
        """Parse sector i's header: True and (_s_sseq, _s_first, _s_ec) set, or False."""
        sh = self._sh
        self._f.readblocks(i, sh, 0)
        if sh[0:4] != SECTOR_MAGIC:
            return False
        if _crc32(memoryview(sh)[0:16]) != _unpack_from("<I", sh, 16)[0]:
            return False
        self._s_sseq, self._s_first, self._s_ec = _unpack_from("<III", sh, 4)
        return True

    def _record(self, sec, off):
        """Read and check the record at (sec, off). Returns its payload length, with _r_seq and
        _r_flag set; -2 if the position is erased (end of data); -1 if it is not a valid
        record (torn, corrupt) or does not fit."""
        bs = self._bs
        if off + ROVER > bs:
            return -2  # no room for a record: the end of this sector's data
        mv = self._mv
        f = self._f
        f.readblocks(sec, mv[0:RHDR], off)
        b = self._buf
        if b[0] != REC_MAGIC:
            return -2 if b[0] == 0xFF else -1
        n = b[1] | (b[2] << 8)
        if n > MAX_PAYLOAD or off + ROVER + n > bs:
            return -1
        f.readblocks(sec, mv[RHDR:ROVER + n], off + RHDR)
        if _crc32(mv[0:RHDR + n]) != _unpack_from("<I", b, RHDR + n)[0]:
            return -1
        self._r_seq = _unpack_from("<I", b, 3)[0]
        self._r_flag = b[ROVER - 1 + n]
        return n

    def _blank(self, sec, off):
        """Is the rest of sector sec, from off, erased?"""
        bs = self._bs
        chk = self._chk
        k = len(chk)
        f = self._f
        while bs - off >= k:
            f.readblocks(sec, chk, off)
            if chk != _FF:
                return False
            off += k
        if off < bs:
            f.readblocks(sec, memoryview(chk)[0:bs - off], off)
            i = 0
            while i < bs - off:
                if chk[i] != 0xFF:
                    return False
                i += 1
        return True

    # ---- recovery ------------------------------------------------------------------------------

    def recover(self):
        """Rebuild the in-RAM state from flash (called by the constructor; never writes).
        Cost: every sector header, the head sector, at most one record per live sector and up
        to two more sectors, whatever the number of records."""
        n = self._n
        self.torn = 0
        self._cn = -1
        self._spare = False
        self._spare_ec = -1
        # 1. the head: the valid sector with the highest sector_seq
        head = -1
        hs = 0
        for i in range(n):
            if self._sector(i) and (head < 0 or self._s_sseq > hs):
                head = i
                hs = self._s_sseq
        if head < 0:
            # a blank (or foreign) partition: the first append formats sector 0 and gets
            # first_seq (a re-provisioned reader must not reuse numbers the gateway has seen)
            self._head = -1
            self._hsseq = 0
            self._hec = 0
            self._hfirst = self._seq0
            self._tail = 0
            self._tfirst = self._seq0
            self._run = 0
            self._wpos = self._bs
            self._last = self._seq0 - 1
            self._dlv = self._seq0 - 1
            self._csec = 0
            self._coff = SHDR
            return
        self._sector(head)
        self._head = head
        self._hsseq = hs
        self._hec = self._s_ec
        self._hfirst = self._s_first
        # 2. the live run: walk back while sector_seq goes down by one
        tail = head
        run = 1
        want = hs - 1
        first = self._s_first
        while run < n:
            j = (tail - 1) % n
            if not self._sector(j) or self._s_sseq != want or self._s_first > first:
                break
            tail = j
            run += 1
            want -= 1
            first = self._s_first
        self._tail = tail
        self._run = run
        self._tfirst = first
        # 3. the head sector: records up to the first blank or invalid position
        off = SHDR
        seq = self._hfirst
        flagged = -1
        while True:
            r = self._record(head, off)
            if r == -2:
                if not self._blank(head, off):
                    self.torn += 1
                    off = self._bs  # torn bytes after the last record: seal the sector
                break
            if r < 0 or self._r_seq != seq:
                self.torn += 1
                off = self._bs
                break
            if self._r_flag != 0xFF:
                flagged = seq
            seq += 1
            off += ROVER + r
        self._wpos = off
        self._last = seq - 1
        # 4. the delivered point
        if flagged < 0:
            s = head
            k = 1
            while k < run:
                s = (s - 1) % n
                k += 1
                if not self._sector(s):
                    break
                r = self._record(s, SHDR)
                if r >= 0 and self._r_seq == self._s_first and self._r_flag != 0xFF:
                    flagged = self._scan_flags(s, self._s_first)
                    break
        dlv = self._tfirst - 1
        if flagged > dlv:
            dlv = flagged
        if dlv > self._last:
            dlv = self._last
        self._dlv = dlv
        # 5. the cursor: on the first undelivered record, or after the last record
        self._csec = head
        self._coff = self._wpos
        if dlv < self._last:
            s = head
            k = 0
            while k < run - 1:
                if self._sector(s) and self._s_first <= dlv + 1:
                    break
                s = (s - 1) % n
                k += 1
            self._csec = s
            self._coff = SHDR
            if self._resolve() < 0:
                self._lose_rest()

    def _scan_flags(self, sec, seq):
        """Highest flagged record of sector sec, whose first record has number seq."""
        off = SHDR
        best = -1
        while True:
            r = self._record(sec, off)
            if r < 0 or self._r_seq != seq:
                return best
            if self._r_flag != 0xFF:
                best = seq
            seq += 1
            off += ROVER + r

    # ---- the delivery cursor -----------------------------------------------------------------
    # (_csec, _coff) is a position in a live sector at or before record _dlv + 1 (when that
    # record exists), or where the next record goes: sectors before _csec hold delivered records
    # only. _resolve() moves it onto the record (and caches its length in _cn); ack() and
    # recover() leave it there.

    def _locate(self, sec, off, seq):
        """Find the first record numbered >= seq at or after (sec, off), following the ring up
        to the head. Returns its payload length and sets _l_sec/_l_off/_r_seq, or -1."""
        n = self._n
        hops = 0
        while True:
            r = self._record(sec, off)
            if r >= 0:
                if self._r_seq >= seq:
                    self._l_sec = sec
                    self._l_off = off
                    return r
                off += ROVER + r
                continue
            if sec == self._head or hops >= n:
                return -1
            sec = (sec + 1) % n
            off = SHDR
            hops += 1

    def _resolve(self):
        """Put the cursor on record _dlv + 1 and return its payload length; -1 if there is no
        such record on flash. Records found missing (flash corruption only: a power cut never
        removes a stored record) are counted in `lost` and skipped."""
        if self._cn >= 0:
            return self._cn
        r = self._locate(self._csec, self._coff, self._dlv + 1)
        if r < 0:
            return -1
        self._csec = self._l_sec
        self._coff = self._l_off
        if self._r_seq > self._dlv + 1:
            self.lost += self._r_seq - 1 - self._dlv
            self._dlv = self._r_seq - 1
        self._cn = r
        return r

    def _lose_rest(self):
        self._cn = -1
        if self._dlv < self._last:
            self.lost += self._last - self._dlv
            self._dlv = self._last

    # ---- API -----------------------------------------------------------------------------------

    def append(self, payload):
        """Store one event; returns its sequence number once it is on flash. Raises JournalFull
        (nothing stored, nothing dropped) or ValueError (payload over max_payload)."""
        n = len(payload)
        if n > self._maxp:
            raise ValueError("record too large")
        need = ROVER + n
        if self._wpos + need > self._bs:
            self._roll()
        seq = self._last + 1
        if seq > SEQ_LIMIT:
            raise JournalFull("sequence numbers exhausted")
        b = self._buf
        _pack_into("<BHI", b, 0, REC_MAGIC, n, seq)
        b[RHDR:RHDR + n] = payload
        _pack_into("<I", b, RHDR + n, _crc32(self._mv[0:RHDR + n]))
        off = self._wpos
        # the number is spent even if the write fails: it is never given to another record
        self._last = seq
        self._wpos = self._bs
        self._f.writeblocks(self._head, self._mv[0:need - 1], off)
        self._wpos = off + need
        self.appends += 1
        return seq

    def _roll(self):
        """Open the next sector of the ring (erasing it unless prepare() already did)."""
        nxt = (self._head + 1) % self._n
        if self._head >= 0 and self._run == self._n:
            if not self._tail_delivered():
                self.full_events += 1
                raise JournalFull("journal full of undelivered records")
            self._drop_tail()
        ec = self._spare_ec
        if not self._spare:
            ec = self._wipe(nxt)
        if ec < 0:
            ec = self._hec if self._hec > 0 else 1
        sh = self._sh
        sh[0:4] = SECTOR_MAGIC
        _pack_into("<III", sh, 4, self._hsseq + 1, self._last + 1, ec)
        _pack_into("<I", sh, 16, _crc32(memoryview(sh)[0:16]))
        self._spare = False
        self._spare_ec = -1
        self._wpos = self._bs
        self._f.writeblocks(nxt, sh, 0)
        self._head = nxt
        self._hsseq += 1
        self._hec = ec
        self._hfirst = self._last + 1
        self._wpos = SHDR
        self._run += 1
        if self._run == 1:
            self._tail = nxt
            self._tfirst = self._hfirst
            self._csec = nxt
            self._coff = SHDR
            self._cn = -1

    def _tail_delivered(self):
        if self._dlv >= self._last or self._csec != self._tail:
            return True
        if self._resolve() < 0:
            self._lose_rest()
            return True
        return self._csec != self._tail

    def _drop_tail(self):
        """Forget the oldest live sector (all delivered); its content stays until the erase."""
        if self._csec == self._tail:
            # everything is delivered and the cursor still sits after the last record there
            self._csec = self._head
            self._coff = self._wpos
            self._cn = -1
        self._tail = (self._tail + 1) % self._n
        self._run -= 1
        if self._sector(self._tail):
            self._tfirst = self._s_first

    def _wipe(self, i):
        """Zero a sector's header, then erase it; returns its new erase count, -1 if unknown
        (no valid header). A sector that merely reads blank is erased all the same: an
        interrupted erase can leave cells that read 1 today and 0 tomorrow."""
        ec = -1
        if self._sector(i):
            ec = self._s_ec + 1
            self._f.writeblocks(i, _ZERO_SHDR, 0)
        self._f.ioctl(6, i)
        self.erases += 1
        return ec

    def prepare(self):
        """Erase the next sector ahead of time (call from the idle loop) so that the append that
        fills the head sector does not wait for a 45 ms erase. Returns True if it erased."""
        if self._spare:
            return False
        nxt = (self._head + 1) % self._n
        if self._run == self._n:
            if not self._tail_delivered():
                return False
            self._drop_tail()
        self._spare_ec = self._wipe(nxt)
        self._spare = True
        return True

    def ack(self, seq):
        """The broker acknowledged every record up to seq: flag them delivered on flash.
        Returns the number of records newly marked."""
        if seq <= self._dlv:
            return 0
        if seq > self._last:
            raise ValueError("ack beyond the last record")
        done = 0
        while self._dlv < seq:
            r = self._resolve()
            if r < 0:
                self._lose_rest()
                break
            if self._dlv >= seq:
                break
            self._f.writeblocks(self._csec, _FLAG_DONE, self._coff + ROVER - 1 + r)
            self._dlv += 1
            self._coff += ROVER + r
            self._cn = -1
            done += 1
        # leave the cursor on the next undelivered record: free_bytes() and the next ack need it
        if self._dlv < self._last and self._resolve() < 0:
            self._lose_rest()
        self.acks += done
        return done

    def pending(self, limit=-1):
        """Undelivered (seq, payload) in order, read from flash one at a time. Do not append or
        ack while iterating; take a batch with peek() instead."""
        sec = self._csec
        off = self._coff
        seq = self._dlv + 1
        last = self._last
        while limit != 0 and seq <= last:
            r = self._locate(sec, off, seq)
            if r < 0:
                return
            sec = self._l_sec
            off = self._l_off
            seq = self._r_seq
            yield seq, bytes(self._mv[RHDR:RHDR + r])
            seq += 1
            off += ROVER + r
            limit -= 1

    def peek(self, count=1):
        """Up to count undelivered (seq, payload), oldest first."""
        out = []
        for item in self.pending(count):
            out.append(item)
        return out

    def peek_after(self, after, count=1):
        """Up to count undelivered (seq, payload) numbered above after, oldest first: a reader
        that waits for the gateway's confirmation publishes beyond records it still holds. The
        records skipped are read, not copied."""
        out = []  # type: list
        seq = (after if after > self._dlv else self._dlv) + 1
        sec = self._csec
        off = self._coff
        last = self._last
        while len(out) < count and seq <= last:
            r = self._locate(sec, off, seq)
            if r < 0:
                break
            sec = self._l_sec
            off = self._l_off
            seq = self._r_seq
            out.append((seq, bytes(self._mv[RHDR:RHDR + r])))
            seq += 1
            off += ROVER + r
        return out

    def depth(self):
        """Number of undelivered records."""
        return self._last - self._dlv

    def last_seq(self):
        return self._last

    def delivered_seq(self):
        return self._dlv

    def capacity(self):
        """Bytes of record space (12 B overhead + payload per record) in the partition."""
        return self._n * (self._bs - SHDR)

    def free_bytes(self):
        """Record space available without touching an undelivered record."""
        per = self._bs - SHDR
        if self._head < 0:
            return self._n * per
        if self._dlv >= self._last:
            done = self._run - 1
        else:
            done = (self._csec - self._tail) % self._n
        return (self._bs - self._wpos) + (self._n - self._run + done) * per

    def fill_percent(self):
        """Share of the capacity that is not free (undelivered records, and delivered ones in
        sectors that still hold undelivered ones), 0..100."""
        cap = self.capacity()
        return (cap - self.free_bytes()) * 100 // cap

    def nearly_full(self):
        """True once fill_percent() reaches high_water (the app raises its alarm then)."""
        cap = self.capacity()
        return (cap - self.free_bytes()) * 100 >= self._hw * cap

    def stats(self):
        return {
            "depth": self.depth(),
            "last_seq": self._last,
            "delivered_seq": self._dlv,
            "free_bytes": self.free_bytes(),
            "capacity": self.capacity(),
            "fill_percent": self.fill_percent(),
            "nearly_full": self.nearly_full(),
            "sectors": self._n,
            "live_sectors": self._run,
            "head": self._head,
            "tail": self._tail,
            "head_erase_count": self._hec,
            "spare_ready": self._spare,
            "torn_at_recovery": self.torn,
            "appends": self.appends,
            "acks": self.acks,
            "erases": self.erases,
            "full_events": self.full_events,
            "lost": self.lost,
        }
