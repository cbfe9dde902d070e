"""The REST gateway: the SIP Trunks API over Kafka (commands out, outcome events back)."""
