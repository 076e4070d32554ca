"""The live path: cameras and streams read as they play (reader), the camera file and its reloads
(cameras), event clips (recorder), results out on NATS and MQTT (publish, mqtt), and the status
server (status)."""
