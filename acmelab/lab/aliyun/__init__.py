"""The lab's local Alibaba Cloud OpenAPI endpoint (HTTPS on loopback).

It stands in for Alibaba Cloud DNS (:mod:`.alidns`) and, with the deploy
engineer's :mod:`.deploy`, for CDN, API Gateway and CAS, so the course's real
clients (``aliyun-python-sdk-core`` with ``aliyunsdkalidns``, and Alibaba's
current ``alibabacloud_*`` SDKs) run offline.  :mod:`.server` verifies both
signatures, V3 (``ACS3-HMAC-SHA256``) and V1 (HMAC-SHA1), with the lab's
AccessKey or temporary credentials (:mod:`.sts`: ``AssumeRole`` and the ECS
instance metadata answer on loopback), and dispatches by action; ``python -m acmelab.lab.aliyun`` runs it (started by
:class:`acmelab.lab.Lab`).
"""
