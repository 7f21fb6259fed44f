"""moto's EC2 behind the model: the only modules that use moto's private API (its request
parser, its instance records and backends). ``backend`` parses and dispatches, ``records``
mirrors the model into moto, ``launch``, ``describe`` and ``changes`` answer the actions
where EC2 is eventually consistent; ``fleet`` (CreateFleet instant), ``templates`` (launch
templates) and ``prices`` (DescribeSpotPriceHistory) those where moto's answer is not EC2's.
"""

from steadyscale.emulator.ec2.backend import Ec2Call, MotoEC2
from steadyscale.emulator.ec2.records import RegionRecords

__all__ = ["Ec2Call", "MotoEC2", "RegionRecords"]
