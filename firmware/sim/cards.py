# The card models a test puts into rig.field.
from .classic_card import Classic
from .desfire_card import DesfireEV3
from .ntag_card import Ntag

# Public key (uncompressed SEC1, hex) of the simulator's stand-in for NXP's DESFire originality
# key: sim.ecdsa_p224.public_key_hex() computes it; test_sim_desfire checks they agree.
ORIGINALITY_PUBLIC_KEY = (
    "048bdf5e0096606c26534366fd148c9e57bab9e1e62ece0f3e802d2b24ec23c6a4"
    "48e7e58caffbbf266b71f776d624a2e886b3c6799d64bd07"
)

__all__ = ["ORIGINALITY_PUBLIC_KEY", "Classic", "DesfireEV3", "Ntag"]
