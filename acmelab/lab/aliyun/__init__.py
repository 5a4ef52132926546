"""The lab's local Alibaba Cloud OpenAPI endpoint (HTTPS on loopback).

One handler module per product, registered in :data:`.server.PRODUCTS`:
:mod:`.alidns` (Alibaba Cloud DNS), :mod:`.cdn`, :mod:`.apigateway`,
:mod:`.cas` and :mod:`.slb` (Classic Load Balancer); CDN, API Gateway and SLB
serve what is bound to them on TLS edges (:mod:`.edge`).  Uploads are checked
by the lab's own :mod:`.certificates`, never by the client's code.  The
course's real clients (``aliyun-python-sdk-core`` with ``aliyunsdkalidns``, and
Alibaba's current ``alibabacloud_*`` SDKs) run against it offline.
:mod:`.server` verifies both signatures, V3 (``ACS3-HMAC-SHA256``) and V1
(HMAC-SHA1), with the lab's AccessKey or temporary credentials (:mod:`.sts`:
``AssumeRole`` and the ECS instance metadata answer on loopback), and
dispatches by action; :mod:`.latency` adds DNS propagation
delay and API latency on demand; ``python -m acmelab.lab.aliyun`` runs it
(started by :class:`acmelab.lab.Lab`).
"""
