# The one failure type of the reader's RF stack (MFRC522 driver, ISO 14443-3/-4, DESFire,
# Classic, NTAG). Every layer turns what went wrong into a CardError with a short reason code,
# so a broken or hostile card ends as a clean "read failed: <reason>" and never as a hang or an
# unhandled exception.

TIMEOUT = "timeout"                  # no answer within the frame / FWT budget
CRC = "crc"                          # CRC or parity error on a received frame
COLLISION = "collision"              # bit collision that anticollision could not resolve
PROTOCOL = "protocol"                # a frame that breaks ISO 14443 or the card's command set
CARD_REMOVED = "card_removed"        # the card left the field mid-transaction
CHIP = "chip_unresponsive"           # the MFRC522 itself stopped answering (re-init follows)
AUTH = "auth_failed"                 # the card does not hold the expected (diversified) key
INTEGRITY = "integrity"              # MAC mismatch or bad padding in secure messaging
STATUS = "card_status"               # the card answered with an error status word
UNSUPPORTED = "unsupported_card"     # card type or layout the reader does not handle
TOO_LONG = "too_long"                # a length beyond the reader's bounds
NO_CARD = "no_card"                  # nothing answered REQA/WUPA

REASONS = (TIMEOUT, CRC, COLLISION, PROTOCOL, CARD_REMOVED, CHIP, AUTH, INTEGRITY, STATUS,
           UNSUPPORTED, TOO_LONG, NO_CARD)


class CardError(Exception):
    """A failed card operation: reason is one of REASONS, detail is free text for logs."""

    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
