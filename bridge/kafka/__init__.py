"""The Kafka adapter: the only importer of aiokafka; aiokafka's errors stop here.

``clients`` (options, the Partition and Message types, error translation, the consumer factory),
``producers`` (the producer factory, the publisher's and the command side's producers),
``reader`` (read partitions to their high-water mark), ``group`` (the command consumer's group
member), ``partitioner`` (the partition a key lands on) and ``topics`` (topic configs and creation).
"""

from bridge.kafka.clients import (
    Message,
    Partition,
    TopicReader,
    client_options,
    diagnosed,
    new_consumer,
    translated,
)
from bridge.kafka.group import GroupConsumer, GroupConsumerFactory, KafkaGroupConsumer
from bridge.kafka.partitioner import partition_for
from bridge.kafka.producers import (
    AwaitedProducer,
    ProducerFactory,
    RecordSender,
    new_producer,
    producer_options,
)
from bridge.kafka.reader import read_to_end
from bridge.kafka.topics import COMPACTED, ensure_topics, wanted_topics

__all__ = [
    "COMPACTED",
    "AwaitedProducer",
    "GroupConsumer",
    "GroupConsumerFactory",
    "KafkaGroupConsumer",
    "Message",
    "Partition",
    "ProducerFactory",
    "RecordSender",
    "TopicReader",
    "client_options",
    "diagnosed",
    "ensure_topics",
    "new_consumer",
    "new_producer",
    "partition_for",
    "producer_options",
    "read_to_end",
    "translated",
    "wanted_topics",
]
