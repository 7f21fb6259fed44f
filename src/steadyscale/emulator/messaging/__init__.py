"""moto's SQS and EventBridge behind the emulator's endpoint: the only modules besides
``emulator.ec2`` that use moto. ``serving`` answers SQS and EventBridge requests for the
emulated account; ``bus`` routes the events EC2 emits through the default event bus to
the targets of the account's rules, as AWS does.
"""

from steadyscale.emulator.messaging.serving import MESSAGING_SERVICES, MotoMessaging, service_of

__all__ = ["MESSAGING_SERVICES", "MotoMessaging", "service_of"]
