# What ships to a reader, in the style of micropython-lib's manifest.py (metadata / module):
# device/ goes to the root of the reader's file system, lib/ to /lib. Exactly these files: the
# RF simulator (sim/) and the unix-port tools (tools/) never ship. /pinmap.json (data, from
# hardware/pinmap.json) and /reader.json, /keys/* come from provisioning (cbcc reader provision).
# tests/firmware/test_firmware_manifest.py checks this list against the modules device/main.py
# and device/boot.py import (transitively) and against the disk. Layers: firmware/README.md.
metadata(description="cbcc door and attendance reader (ESP32 + MFRC522)", version="0.1.0")

# device/: the entry points (boot.py forces the lock relay off before anything else runs)
module("boot.py", base_path="device")
module("main.py", base_path="device")
module("board_pins.py", base_path="device")

# application
module("app.py", base_path="lib")
module("assembly.py", base_path="lib")

# board
module("board_esp32.py", base_path="lib")
module("ticks.py", base_path="lib")
module("ds3231.py", base_path="lib")
module("ssd1306.py", base_path="lib")
module("vnfont.py", base_path="lib")
module("terminal_display.py", base_path="lib")
module("messages_vi.py", base_path="lib")

# RF: MFRC522 -> ISO 14443-3 -> ISO-DEP -> DESFire / Classic / NTAG -> card read
module("mfrc522.py", base_path="lib")
module("rferror.py", base_path="lib")
module("iso14443a.py", base_path="lib")
module("isodep.py", base_path="lib")
module("desfire.py", base_path="lib")
module("desfire_crypto.py", base_path="lib")
module("aes.py", base_path="lib")
module("card_layout.py", base_path="lib")
module("classic.py", base_path="lib")
module("ntag.py", base_path="lib")
module("card_reader.py", base_path="lib")

# trust: CBOR, COSE, RSA, credential, trust and revocation lists, configuration
module("cbor.py", base_path="lib")
module("cose.py", base_path="lib")
module("cose_key.py", base_path="lib")
module("rs256.py", base_path="lib")
module("signed.py", base_path="lib")
module("credential.py", base_path="lib")
module("trust.py", base_path="lib")
module("revocation.py", base_path="lib")
module("trust_store.py", base_path="lib")
module("trust_stream.py", base_path="lib")
module("root_chain.py", base_path="lib")
module("crl_national.py", base_path="lib")
module("reader_config.py", base_path="lib")

# door: policy, civil time, door I/O, terminal
module("policy.py", base_path="lib")
module("localtime.py", base_path="lib")
module("door.py", base_path="lib")
module("terminal.py", base_path="lib")

# link: MQTT, sealed events, uplink, transfers, commands, time
module("mqtt.py", base_path="lib")
module("hmac_sha256.py", base_path="lib")
module("events.py", base_path="lib")
module("uplink.py", base_path="lib")
module("blob_transfer.py", base_path="lib")
module("commands.py", base_path="lib")
module("timesync.py", base_path="lib")
module("clock.py", base_path="lib")

# encoder mode (an issuing station's card encoder on USB serial; main.py boots into it when the
# configuration says so, docs/encoder-protocol.md)
module("encoder.py", base_path="lib")

# storage: journal, state files
module("journal.py", base_path="lib")
module("statefile.py", base_path="lib")
