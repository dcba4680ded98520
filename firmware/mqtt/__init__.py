"""MQTT: topics, the outbox drainer, presence, engine commands, broker config.

Only :mod:`tessera.drivers.mqtt_client` touches paho; this package speaks to it
through ``MqttPort`` and its event dataclasses. See ``docs/mqtt.md``.
"""
