"""The judge of ECS security groups on Terway trunk ENIs: :mod:`.model`, :mod:`.read`,
:mod:`.evaluate`."""
