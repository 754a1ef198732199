"""Types shared by every layer: payloads, history events, commands, clocks, failures."""
