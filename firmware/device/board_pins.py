# Written by provisioning from hardware/pinmap.json for the reader's board; read by boot.py
# before anything else. GPIO32 carries the lock relay on both supported boards
# (esp32-devkitc and olimex-esp32-poe-iso).
BOARD = "esp32-devkitc"
LOCK_RELAY = 32
