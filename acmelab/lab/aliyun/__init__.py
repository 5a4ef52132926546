"""The lab's local Alibaba Cloud OpenAPI endpoint (HTTPS on loopback).

It stands in for Alibaba Cloud DNS (:mod:`.alidns`) and, with the deploy
engineer's :mod:`.deploy`, for CDN, API Gateway and CAS, so the course's real
clients (``aliyun-python-sdk-core`` with ``aliyunsdkalidns``) run offline.
:mod:`.server` verifies the SDK's HMAC-SHA1 signatures and dispatches by
``Action``; ``python -m acmelab.lab.aliyun`` runs it (started by
:class:`acmelab.lab.Lab`).
"""
