"""HubSpot's documented answers, run through the connector's parsers.

HubSpot publishes no spec we may copy (shared/api-specs/README.md), so the fake is
written from its reference pages. These tests close the loop: each answer below is
HubSpot's own documented example (cited next to it), served verbatim by the fake
to the real connector code, and accepted by the fake's answer contract
(``hubspot_contract.ANSWERS``) so the fake cannot drift from it. A changed shape
(a field renamed or of another type) must be a BadAnswer naming the endpoint and
the field, never a smaller table.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from connectors import hubspot_email_content as mail
from connectors import hubspot_events as he
from connectors.hubspot_deals import WonDeals, won_stage_ids
from connectors.hubspot_lists import Lists
from segmerge.errors import BadAnswer
from tests.fakes.hubspot import HubSpotFake, make_connector
from tests.fakes.hubspot_contract import ANSWERS

# https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/get-crm-v3-objects-contacts
# (example response of "List contacts"; HubSpot's guide https://developers.hubspot.com/docs/guides/api/crm/objects/contacts)
CONTACTS = {
    "results": [
        {
            "id": "512",
            "properties": {
                "createdate": "2019-10-30T03:30:17.883Z",
                "email": "bcooper@biglytics.net",
                "firstname": "Bryan",
                "hs_object_id": "512",
                "lastmodifieddate": "2019-12-07T16:50:06.678Z",
                "lastname": "Cooper",
            },
            "createdAt": "2019-10-30T03:30:17.883Z",
            "updatedAt": "2019-12-07T16:50:06.678Z",
            "archived": False,
        }
    ],
    "paging": {"next": {"after": "NTI1Cg%3D%3D", "link": "?after=NTI1Cg%3D%3D"}},
}
# https://developers.hubspot.com/docs/api-reference/crm-pipelines-v3/pipelines/get-crm-v3-pipelines-objectType
# ("Retrieve all pipelines": results of PipelineStage with string metadata, SDK
# hubspot/crm/pipelines/models/pipeline_stage.py)
PIPELINES = {
    "results": [
        {
            "id": "default",
            "label": "Sales Pipeline",
            "displayOrder": 0,
            "archived": False,
            "createdAt": "2019-10-30T03:30:17.883Z",
            "updatedAt": "2019-12-07T16:50:06.678Z",
            "stages": [
                {
                    "id": "appointmentscheduled",
                    "label": "Appointment scheduled",
                    "displayOrder": 0,
                    "metadata": {"isClosed": "false", "probability": "0.2"},
                    "archived": False,
                    "createdAt": "2019-10-30T03:30:17.883Z",
                    "updatedAt": "2019-12-07T16:50:06.678Z",
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                },
                {
                    "id": "closedwon",
                    "label": "Closed won",
                    "displayOrder": 5,
                    "metadata": {"isClosed": "true", "probability": "1.0"},
                    "archived": False,
                    "createdAt": "2019-10-30T03:30:17.883Z",
                    "updatedAt": "2019-12-07T16:50:06.678Z",
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                },
                {
                    "id": "closedlost",
                    "label": "Closed lost",
                    "displayOrder": 6,
                    "metadata": {"isClosed": "true", "probability": "0.0"},
                    "archived": False,
                    "createdAt": "2019-10-30T03:30:17.883Z",
                    "updatedAt": "2019-12-07T16:50:06.678Z",
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                },
            ],
        }
    ]
}
# https://developers.hubspot.com/docs/api-reference/crm-deals-v3/basic/get-crm-v3-objects-deals
# (SimplePublicObjectWithAssociations: associations.<type>.results [{id, type}], paging)
DEALS = {
    "results": [
        {
            "id": "7001",
            "properties": {
                "amount": "1500.00",
                "closedate": "2019-12-07T16:50:06.678Z",
                "dealname": "Custom data integrations",
                "dealstage": "closedwon",
                "pipeline": "default",
                "hs_is_closed_won": None,
            },
            "createdAt": "2019-10-30T03:30:17.883Z",
            "updatedAt": "2019-12-07T16:50:06.678Z",
            "archived": False,
            "associations": {"contacts": {"results": [{"id": "512", "type": "deal_to_contact"}]}},
        },
        {
            "id": "7002",
            "properties": {
                "amount": "80",
                "closedate": "2019-12-08T10:00:00.000Z",
                "dealname": "Lost one",
                "dealstage": "closedlost",
                "pipeline": "default",
                "hs_is_closed_won": "false",
            },
            "createdAt": "2019-10-30T03:30:17.883Z",
            "updatedAt": "2019-12-07T16:50:06.678Z",
            "archived": False,
            "associations": {"contacts": {"results": [{"id": "513", "type": "deal_to_contact"}]}},
        },
    ]
}
# https://developers.hubspot.com/docs/api-reference/crm-associations-v4/basic/get-crm-v4-objects-objectType-objectId-associations-toObjectType
# (CollectionResponseMultiAssociatedObjectWithLabelForwardPaging, "Limit 500 per call")
ASSOCIATIONS = {
    "results": [
        {
            "toObjectId": 512,
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None},
                {"category": "USER_DEFINED", "typeId": 42, "label": "Décideur"},
            ],
        },
        {
            "toObjectId": 513,
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}],
        },
    ]
}
# https://developers.hubspot.com/docs/api-reference/legacy/reporting/email-analytics/events/get-email-public-v1-events
# and the guide https://developers.hubspot.com/docs/api-reference/legacy/email-analytics-v1/guide
# (id, created in epoch ms, type, recipient, portalId, appId, appName, emailCampaignId)
EVENTS = {
    "hasMore": False,
    "offset": "CgYIhcP63ASTAQ",
    "events": [
        {
            "appId": 113,
            "appName": "Batch",
            "created": 1575737406678,
            "emailCampaignId": 11223344,
            "id": "4bdd5bfc-1d67-4b39-8d36-7b9b0b1eb6b1",
            "portalId": 62515,
            "recipient": "bcooper@biglytics.net",
            "type": "OPEN",
            "browser": {
                "name": "Firefox",
                "family": "Firefox",
                "producer": "Mozilla",
                "producerUrl": "",
                "type": "Browser",
                "url": "",
                "version": ["70.0"],
            },
            "location": {"city": "cambridge", "country": "UNITED STATES", "state": "massachusetts"},
            "sentBy": {"created": 1575737000000, "id": "e1"},
        },
        {
            "appId": 113,
            "appName": "Batch",
            "created": 1575737406000,
            "emailCampaignId": 11223344,
            "id": "7b2f0b9e-0000-4b39-8d36-7b9b0b1eb6b1",
            "portalId": 62515,
            "recipient": "bcooper@biglytics.net",
            "type": "DELIVERED",
            "response": "250 OK",
            "smtpId": None,
            "sentBy": {"created": 1575737000000, "id": "e1"},
        },
        {
            "appId": 113,
            "appName": "Batch",
            "created": 1575737500000,
            "emailCampaignId": 11223344,
            "id": "9c8d0b9e-0000-4b39-8d36-7b9b0b1eb6b1",
            "portalId": 62515,
            "recipient": "bcooper@biglytics.net",
            "type": "STATUSCHANGE",
            "source": "SOURCE_RECIPIENT",
            "subscriptions": [{"id": 1, "status": "UNSUBSCRIBED"}],
            "requestedBy": "x",
        },
    ],
}
# https://developers.hubspot.com/docs/api-reference/marketing-marketing-emails-v3-v3/marketing-emails/post-marketing-v3-emails-
# (PublicEmail example: the rich-text module-0-1-1, the footer module-1-1-1, preview_text;
# abridged to the fields the connector reads)
EMAIL = {
    "id": "10030",
    "name": "My subject",
    "subject": "My subject",
    "state": "DRAFT",
    "sendOnPublish": False,
    "subcategory": "batch",
    "from": {"fromName": "Bruce Wayne", "replyTo": "test@hubspot.com"},
    "to": {
        "contactIds": {},
        "contactLists": {"exclude": [], "include": []},
        "suppressGraymail": True,
    },
    "content": {
        "flexAreas": {
            "main": {
                "boxed": False,
                "isSingleColumnFullWidth": False,
                "sections": [
                    {
                        "columns": [
                            {
                                "id": "column_1606761806181_0",
                                "widgets": ["module_160676180617911"],
                                "width": 12,
                            }
                        ],
                        "id": "section_1606761806181",
                        "style": {"backgroundColor": "", "backgroundType": "CONTENT"},
                    },
                    {
                        "columns": [{"id": "column-0-1", "widgets": ["module-0-1-1"], "width": 12}],
                        "id": "section-0",
                        "style": {
                            "backgroundType": "CONTENT",
                            "paddingBottom": "40px",
                            "paddingTop": "40px",
                        },
                    },
                    {
                        "columns": [{"id": "column-1-1", "widgets": ["module-1-1-1"], "width": 12}],
                        "id": "section-1",
                        "style": {
                            "backgroundColor": "",
                            "backgroundType": "CONTENT",
                            "paddingBottom": "0px",
                            "paddingTop": "0px",
                        },
                    },
                ],
            }
        },
        "plainTextVersion": "Hello {{ contact.firstname }},",
        "styleSettings": {},
        "widgets": {
            "module-0-1-1": {
                "body": {
                    "css_class": "dnd-module",
                    "html": '<p style="margin-bottom:10px;">Hello {{ contact.firstname }},<br><br>Plain '
                    "text emails have minimal formatting</p>",
                    "i18nKey": "richText.plainText",
                    "path": "@hubspot/rich_text",
                    "schema_version": 2,
                },
                "child_css": {},
                "css": {},
                "id": "module-0-1-1",
                "module_id": 1155639,
                "name": "module-0-1-1",
                "order": 2,
                "styles": {},
                "type": "module",
            },
            "module-1-1-1": {
                "body": {
                    "align": "center",
                    "css_class": "dnd-module",
                    "path": "@hubspot/email_footer",
                    "schema_version": 2,
                    "unsubscribe_link_type": "both",
                },
                "child_css": {},
                "css": {},
                "id": "module-1-1-1",
                "module_id": 2869621,
                "name": "module-1-1-1",
                "order": 3,
                "styles": {},
                "type": "module",
            },
            "module_160676180617911": {
                "body": {"hs_enable_module_padding": False, "hs_wrapper_css": {}},
                "child_css": {},
                "css": {},
                "id": "module_160676180617911",
                "module_id": 2794854,
                "name": "module_160676180617911",
                "styles": {},
                "type": "module",
            },
            "preview_text": {
                "body": {"value": ""},
                "child_css": {},
                "css": {},
                "id": "preview_text",
                "name": "preview_text",
                "order": 0,
                "styles": {},
                "type": "text",
            },
        },
    },
}
# https://developers.hubspot.com/docs/api-reference/crm-lists-v3/memberships/put-crm-v3-lists-listId-memberships-add
# (the reference's example spells "recordIdsAdded"; the SDK model MembershipsUpdateResponse,
# hubspot/crm/lists/models/memberships_update_response.py, "recordsIdsAdded")
MEMBERSHIPS = {"recordIdsAdded": ["123", "456"], "recordIdsMissing": ["789"]}


@pytest.fixture
def fake():
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as server:
        yield server


def serve(fake: HubSpotFake, path: str, body: Any) -> None:
    fake.fail_next(200, path=path, body=body)


@pytest.mark.parametrize(
    "key, example",
    [
        (("GET", "/crm/v3/objects/contacts"), CONTACTS),
        (("GET", "/crm/v3/pipelines/deals"), PIPELINES),
        (("GET", "/crm/v3/objects/deals"), DEALS),
        (("GET", "/crm/v4/objects/deals/{dealId}/associations/contacts"), ASSOCIATIONS),
        (("GET", "/email/public/v1/events"), EVENTS),
        (("GET", "/marketing/v3/emails/{emailId}"), EMAIL),
    ],
)
def test_the_fakes_answer_contract_accepts_hubspots_own_examples(key, example):
    jsonschema.validate(example, ANSWERS[key])


def test_the_documented_contact_page_is_read_whole(fake):
    from connectors import hubspot_pull as hp

    conn = make_connector(fake, orders="none", events=False)
    serve(fake, r"^/crm/v3/objects/contacts$", {"results": CONTACTS["results"]})
    records = hp.read_contacts(
        conn.api.pages_cursor(hp.CONTACTS, items_key="results", next_cursor=lambda b: None),
        "GET /crm/v3/objects/contacts",
        "crm",
    )
    assert records["512"]["properties"]["email"] == "bcooper@biglytics.net"
    contacts = hp.contacts_frame(records, {}, {}, "segmerge_segments", [], "crm")
    row = contacts.iloc[0]
    assert (row["contact_id"], row["email"], row["first_name"]) == (
        "512",
        "bcooper@biglytics.net",
        "Bryan",
    )
    assert str(row["updated_at"]) == "2019-12-07 16:50:06.678000+00:00"


def test_the_documented_pipelines_give_the_won_stage(fake):
    serve(fake, r"^/crm/v3/pipelines/deals$", PIPELINES)
    assert won_stage_ids(make_connector(fake).api) == {"closedwon"}


def test_the_documented_deals_and_associations_give_orders(fake):
    conn = make_connector(fake)
    serve(fake, r"^/crm/v3/objects/deals$", DEALS)
    serve(fake, r"^/crm/v3/pipelines/deals$", PIPELINES)  # 7001's hs_is_closed_won is null
    orders = WonDeals(conn.api, None).frame()
    assert orders["order_id"].tolist() == ["7001:512"] and orders["amount"].tolist() == [1500.0]
    paged = copy.deepcopy(DEALS)
    paged["results"][0]["associations"]["contacts"]["paging"] = {"next": {"after": "MTAw"}}
    serve(fake, r"^/crm/v3/objects/deals$", paged)
    serve(fake, r"^/crm/v3/pipelines/deals$", PIPELINES)
    serve(fake, r"^/crm/v4/objects/deals/7001/associations/contacts$", ASSOCIATIONS)
    orders = WonDeals(conn.api, None).frame()
    assert orders["order_id"].tolist() == ["7001:512", "7001:513"]


def test_the_documented_events_give_engagement_columns():
    page = he.page_frame(EVENTS["events"], "crm")
    assert page[["event", "campaign_id"]].values.tolist() == [
        ["open", "11223344"],
        ["unsubscribe", "11223344"],
    ]
    assert set(page["recipient"]) == {"bcooper@biglytics.net"}


def test_the_documented_email_shows_its_rich_text():
    assert mail.rich_text_ids(EMAIL["content"]) == ["module-0-1-1"]
    assert mail.holds_letter(EMAIL, "<p>Hello {{ contact.firstname }},<br><br>Plain text</p>")
    assert not mail.holds_letter(EMAIL, "<p>Bonjour</p>")


@pytest.mark.parametrize(
    "answer",
    [MEMBERSHIPS, {**MEMBERSHIPS, "recordIdsRemoved": [], "recordsIdsAdded": ["123", "456"]}],
)
def test_the_documented_membership_answers_name_the_missing_records(fake, answer):
    serve(fake, r"/memberships/add$", answer)
    assert Lists(make_connector(fake).api)._call("/crm/v3/lists/9/memberships/add", ["1"]) == {
        "789"
    }


# changed shapes: loud, named, never a smaller table -----------------------------------
def _without(d: dict, *path: Any) -> dict:
    out = copy.deepcopy(d)
    node = out
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return out


def test_a_contact_property_of_another_type_is_named(fake):
    from connectors import hubspot_pull as hp

    bad = copy.deepcopy(CONTACTS["results"])
    bad[0]["properties"]["firstname"] = {"value": "Bryan"}  # the v1 API's shape
    with pytest.raises(BadAnswer) as err:
        hp.read_contacts([bad], "GET /crm/v3/objects/contacts", "crm")
    assert "GET /crm/v3/objects/contacts" in str(err.value) and "'firstname'" in str(err.value)


@pytest.mark.parametrize(
    "path, body, words",
    [
        (r"^/crm/v3/pipelines/deals$", {"results": [{"id": "p", "label": "x"}]}, "'stages'"),
        (
            r"^/crm/v3/pipelines/deals$",
            _without(PIPELINES, "results", 0, "stages", 1, "metadata"),
            "'metadata'",
        ),
    ],
)
def test_a_changed_pipeline_shape_is_named(fake, path, body, words):
    serve(fake, path, body)
    with pytest.raises(BadAnswer) as err:
        won_stage_ids(make_connector(fake).api)
    assert "GET /crm/v3/pipelines/deals" in str(err.value) and words in str(err.value)


def test_a_changed_association_shape_is_named(fake):
    conn = make_connector(fake)
    paged = copy.deepcopy(DEALS)
    paged["results"][0]["associations"]["contacts"]["paging"] = {"next": {"after": "MTAw"}}
    serve(fake, r"^/crm/v3/objects/deals$", paged)
    serve(fake, r"^/crm/v3/pipelines/deals$", PIPELINES)
    renamed = {"results": [{"id": 512, "associationTypes": []}]}  # v3's "id", not "toObjectId"
    serve(fake, r"^/crm/v4/objects/deals/7001/associations/contacts$", renamed)
    with pytest.raises(BadAnswer) as err:
        WonDeals(conn.api, None).frame()
    assert "associations/contacts" in str(err.value) and "'toObjectId'" in str(err.value)


@pytest.mark.parametrize(
    "event, field",
    [
        (_without(EVENTS["events"][0], "created"), "'created'"),
        (_without(EVENTS["events"][0], "recipient"), "'recipient'"),
        ({**EVENTS["events"][0], "created": "2019-12-07"}, "'created'"),
    ],
)
def test_a_changed_event_shape_is_named(event, field):
    with pytest.raises(BadAnswer) as err:
        he.page_frame([event], "crm")
    assert "GET /email/public/v1/events" in str(err.value) and field in str(err.value)


def test_an_email_answer_without_content_is_named(fake):
    from connectors.hubspot_drafts import Drafts

    serve(fake, r"^/marketing/v3/emails/10030$", _without(EMAIL, "content"))
    conn = make_connector(fake)
    with pytest.raises(BadAnswer) as err:
        Drafts(conn.api, Lists(conn.api), None)._read("10030")
    assert "GET /marketing/v3/emails/{emailId}" in str(err.value) and "'content'" in str(err.value)


def test_a_membership_answer_without_its_missing_list_is_named(fake):
    serve(fake, r"/memberships/add$", {"recordIdsAdded": ["1"]})
    with pytest.raises(BadAnswer) as err:
        Lists(make_connector(fake).api)._call("/crm/v3/lists/9/memberships/add", ["1"])
    assert "memberships/add" in str(err.value) and "recordIdsMissing" in str(err.value)
