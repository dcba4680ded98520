"""The branch's roles: kiosk, counter panels (and the display, in ``tessera.display``).

Roles turn dispatcher actions into engine commands and engine events into
device output. They talk to the engine through ``EnginePort`` (the engine
itself in one process, an MQTT command client on another Pi).
"""
