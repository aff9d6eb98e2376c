"""Alibaba Cloud: ECS security groups for pods on Terway trunk ENIs (see :mod:`.backend`)."""
