"""Reads the hub's delivery orders as a standard Kafka client would: Confluent's consumer, its
SchemaRegistryClient pointed at the hub's registry endpoint, and its AvroDeserializer, which
resolves each message's schema id there. Prints one JSON object per order.

Usage: read_delivery_orders.py BOOTSTRAP REGISTRY_URL TOPIC COUNT
"""
import json
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

bootstrap, registry_url, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": f"python-registry-check-{time.time_ns()}",
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
consumer.subscribe([topic])
read = 0
deadline = time.monotonic() + 60
while read < count and time.monotonic() < deadline:
    message = consumer.poll(1.0)
    if message is None:
        continue
    if message.error():
        sys.exit(f"consumer error: {message.error()}")
    order = deserialize(message.value(), SerializationContext(topic, MessageField.VALUE))
    print(json.dumps(order, ensure_ascii=False, default=str), flush=True)
    read += 1
consumer.close()
if read < count:
    sys.exit(f"read {read} of {count} delivery orders")
