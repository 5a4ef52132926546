"""Services-file keys of issue #14: delivery, keep_previous, region, cert_region;
the two Alibaba Cloud sites' endpoints; coverage of every target by the names."""

from __future__ import annotations

import pytest

from acmelab.aliyun import AliyunClient, Credentials
from acmelab.config import Service, check_covered, parse_services
from acmelab.deploy.regions import cert_region, site_endpoints
from acmelab.errors import ConfigError


def one(**entry):
    [service] = parse_services({"service": [{"domains": ["shop.example.com"], **entry}]})
    return service


def test_cas_delivery_puts_the_carrier_first_and_round_trips():
    service = one(cdn="shop.example.com", cas=True, delivery="cas", keep_previous=2, region="ap-southeast-1")
    assert [t.id for t in service.install] == ["cas", "cdn:shop.example.com"]
    assert (service.delivery, service.keep_previous, service.region, service.cert_region) == \
        ("cas", 2, "ap-southeast-1", None)
    assert Service.from_dict(service.to_dict()) == service
    direct = one(cdn="shop.example.com")
    assert direct.delivery == "direct" and "delivery" not in direct.to_dict() and "region" not in direct.to_dict()
    assert [t.id for t in one(delivery="cas").install] == ["cas"]


@pytest.mark.parametrize("entry, message", [
    ({"delivery": "cdn"}, 'delivery must be "direct" or one of cas'),
    ({"delivery": "cas", "keep_previous": -1}, "keep_previous must be a whole number"),
    ({"keep_previous": True}, "keep_previous must be a whole number"),
    ({"region": "Singapore"}, "region must be an Alibaba Cloud region id"),
    ({"cert_region": "eu-central-1"}, "cert_region must be one of cn-hangzhou, ap-southeast-1"),
])
def test_bad_delivery_keys_name_the_service(entry, message):
    with pytest.raises(ConfigError) as caught:
        one(**entry)
    assert message in str(caught.value) and "service 'shop.example.com'" in str(caught.value)


def test_defaults_may_set_delivery_and_region():
    [a, b] = parse_services({"defaults": {"delivery": "cas", "region": "ap-southeast-1"},
                             "service": [{"domains": ["a.example.com"]}, {"domains": ["b.example.com"],
                                                                          "region": "cn-shanghai"}]})
    assert (a.delivery, a.region, b.region) == ("cas", "ap-southeast-1", "cn-shanghai")


def test_cert_region_and_endpoints_follow_the_site():
    assert cert_region("cn-hangzhou") == cert_region("cn-shanghai") == "cn-hangzhou"
    assert cert_region("ap-southeast-1") == cert_region("eu-central-1") == "ap-southeast-1"
    assert site_endpoints("cn-beijing") == {}
    assert site_endpoints("ap-southeast-1")["cdn"] == "cdn.ap-southeast-1.aliyuncs.com"


@pytest.mark.parametrize("region, product, host", [
    ("cn-hangzhou", "Cdn", "cdn.aliyuncs.com"),
    ("cn-hangzhou", "cas", "cas.aliyuncs.com"),
    ("cn-shanghai", "CloudAPI", "apigateway.cn-shanghai.aliyuncs.com"),
    ("ap-southeast-1", "Cdn", "cdn.ap-southeast-1.aliyuncs.com"),
    ("ap-southeast-1", "cas", "cas.ap-southeast-1.aliyuncs.com"),
    ("ap-southeast-1", "Alidns", "alidns.ap-southeast-1.aliyuncs.com"),
    ("ap-southeast-1", "CloudAPI", "apigateway.ap-southeast-1.aliyuncs.com"),
])
def test_the_client_picks_the_site_endpoint_from_its_region(region, product, host):
    client = AliyunClient(Credentials("LTAI5tLabLabLabLabLab", "s" * 30), region_id=region)
    assert client._default_endpoint(product) == host


def test_every_target_must_be_covered_by_the_names():
    [fine, wrong] = parse_services({"service": [
        {"name": "fine", "domains": ["*.example.com"], "cdn": "cdn.example.com"},
        {"name": "wrong", "domains": ["shop.example.com"],
         "apigateway": {"group_id": "523e8dc7bbe04613b5b1d726c2a7889d", "domain": "api.example.com"}}]})
    check_covered([fine])
    with pytest.raises(ConfigError) as caught:
        check_covered([fine, wrong])
    assert str(caught.value) == ("service 'wrong': apigateway:523e8dc7bbe04613b5b1d726c2a7889d/api.example.com: "
                                 "the certificate covers shop.example.com, not api.example.com")
