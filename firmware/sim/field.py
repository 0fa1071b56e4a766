# The RF field between the MFRC522's antenna and the cards in it: powers cards up and down with
# the carrier, hands every reader frame to every card, and returns what each card answers.
from . import timing


class Response:
    """One card's answer: the bits it modulates (CRC included when the protocol has one)."""

    def __init__(self, data, nbits=None, card_us=0.0):
        self.data = bytes(data)
        self.nbits = len(self.data) * 8 if nbits is None else nbits
        self.card_us = card_us          # processing time on top of the minimum FDT
        self.source = None              # the card
        self.speed = 0                  # bit rate code the card answers at
        self.encrypted_for = None       # card whose Crypto1 stream enciphers it (MIFARE Classic)
        self.parity_error = False       # injected: a parity bit is wrong
        self.guard_us = 0.0             # time the card needs after this answer (SFGT after ATS)

    def delay_us(self):
        return timing.FDT_MIN_US + self.card_us

    def __repr__(self):
        return "Response(%s/%d bits)" % (self.data.hex(), self.nbits)


class Field:
    def __init__(self, clock=None, rng=None):
        self.cards = []
        self.powered = False
        self._clock = clock
        self._rng = rng

    def add(self, card):
        """Put a card into the field (it powers up if the carrier is on)."""
        if card in self.cards:
            return
        self.cards.append(card)
        card.field = self
        if card.rng is None and self._rng is not None:
            card.rng = self._rng.fork("card:" + card.uid.hex())
        if self.powered:
            card.power_on()

    def remove(self, card):
        if card in self.cards:
            self.cards.remove(card)
            card.power_off()
            card.field = None
            card._leaving = False
            card._remove_after = -1

    def set_power(self, on):
        on = bool(on)
        if on == self.powered:
            return
        self.powered = on
        for card in list(self.cards):
            if on:
                card.power_on()
            else:
                card.power_off()

    def transmit(self, data, nbits, speed, crypto_card, t_start, t_end):
        """Deliver one reader frame; return the list of Responses (one per answering card)."""
        if not self.powered:
            return []
        answers = []
        for card in list(self.cards):
            r = card.receive(data, nbits, speed, crypto_card, t_start)
            if r is not None:
                r.source = card
                answers.append(r)
                end = t_end + r.delay_us() + timing.frame_air_us(r.nbits, r.speed)
                card.ready_at = end + r.guard_us
            card.after_frame()
        for card in list(self.cards):
            if card.leaving():
                self.remove(card)
        return answers

    def mf_authent(self, auth_cmd, block, key, uid4, crypto_card, speed, t_start):
        """The MFAuthent exchange, with Crypto1 abstracted: returns (card_that_sent_Nt or None,
        key_accepted)."""
        if not self.powered:
            return None, False
        nt_card = None
        for card in list(self.cards):
            ok = card.mf_auth_begin(auth_cmd, block, crypto_card, speed, t_start)
            card.after_frame()
            if ok and nt_card is None:
                nt_card = card
        accepted = False
        if nt_card is not None:
            accepted = nt_card.mf_auth_finish(auth_cmd, block, key, uid4)
            nt_card.after_frame()
        for card in list(self.cards):
            if card.leaving():
                self.remove(card)
        return nt_card, accepted
