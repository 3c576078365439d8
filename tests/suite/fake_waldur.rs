//! Tests of the fake Waldur server itself (test support for waldur-push), using `ureq` as a
//! plain client. They pin the contract the waldur-push tests rely on: response shapes valid
//! against the OpenAPI subset, the example requests accepted, the example error bodies
//! reproduced, pagination, replace semantics, the backfill rules, decimals and faults.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::fake_waldur::{
    BACKFILL_MSG, ComponentSetup, FakeWaldur, Fault, FaultKind, OfferingUserSetup, PROVIDER_TOKEN,
    ResourceSetup, STAFF_TOKEN, Setup, StoredUsage, StoredUserUsage, det_uuid,
};
use crate::support::openapi::{Mode, Problem, Spec, example};
use serde_json::{Value, json};

use crate::support::scratch::Scratch;

// ---------------------------------------------------------------------------------------------
// A tiny client.

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent(timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(timeout)
        .build()
        .into()
}

fn try_call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Reply, ureq::Error> {
    let auth = token.map(|t| format!("Token {t}"));
    let mut response = match method {
        "GET" | "HEAD" | "DELETE" => {
            let mut req = match method {
                "GET" => agent.get(url),
                "HEAD" => agent.head(url),
                _ => agent.delete(url),
            };
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.call()?
        }
        _ => {
            let mut req = match method {
                "POST" => agent.post(url),
                _ => agent.put(url),
            };
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req = req.header("User-Agent", "fake-waldur-tests/1");
            match body {
                Some(b) => req.send_json(b)?,
                None => req.send_empty()?,
            }
        }
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = if method == "HEAD" {
        String::new()
    } else {
        response.body_mut().read_to_string()?
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(fake: &FakeWaldur, token: &str) -> Client {
        Client {
            agent: agent(Some(Duration::from_secs(10))),
            base: fake.base_url(),
            token: Some(token.to_string()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        try_call(
            &self.agent,
            method,
            &self.url(path),
            self.token.as_deref(),
            body,
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        self.call("POST", path, Some(body))
    }
}

const NOW: &str = "2026-07-09T12:00:00Z";

/// `Setup::small()` with the clock fixed in July 2026.
fn small() -> Setup {
    Setup {
        now: Some(NOW.into()),
        ..Setup::small()
    }
}

fn uuid_of(setup: &Setup, backend_id: &str) -> String {
    setup.resource_uuid(backend_id)
}

// ---------------------------------------------------------------------------------------------
// Schema checks.

/// Validates a reply against the response schema the subset documents for it.
fn assert_valid_response(method: &str, path: &str, reply: &Reply) {
    let spec = Spec::subset();
    let template = spec
        .template_for(path)
        .unwrap_or_else(|| panic!("{path} is not in the subset"));
    assert!(
        spec.documents_status(method, template, reply.status),
        "{method} {template} does not document status {}",
        reply.status
    );
    match spec.response_schema(method, template, reply.status) {
        Some(schema) => {
            let value = reply.json();
            let violations: Vec<_> = spec
                .validate(schema, &value, Mode::Response)
                .into_iter()
                .filter(|v| !known_wire_deviation(template, v))
                .collect();
            assert!(
                violations.is_empty(),
                "{method} {path} -> {}: {}\n{value:#}",
                reply.status,
                violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        None => assert_eq!(reply.body, "", "{method} {path} documents no body"),
    }
}

/// Where the wire differs from the (generated) schema and the notes say the wire wins.
fn known_wire_deviation(template: &str, v: &crate::support::openapi::Violation) -> bool {
    // notes/waldur-api.md §4.8: a user usage without an offering-user link has `user: null`,
    // although the schema declares `user` as a non-nullable URI.
    template.starts_with("/api/marketplace-component-user-usages/")
        && v.problem == Problem::Null
        && v.to_string()
            .split(':')
            .next()
            .is_some_and(|p| p.ends_with(".user"))
}

#[test]
fn validator_rejects_what_the_schema_forbids() {
    // Without this, a schema test that passes could mean a validator that accepts anything.
    let spec = Spec::subset();
    let bad = json!({
        "uuid": "9B1F3E5D-7C2A-4B6E-8D0F-1A3C5E7B9D2F",   // response UUIDs are bare lowercase hex
        "usage": "1.234",                                   // 3 decimal places
        "date": "2026-07-01T00:00:00",                      // no offset in a response
        "billing_period": "2026-7-1",                       // not a date
        "missing_usage_policy": "sometimes",                // not in the enum
        "recurring": "no",                                  // not a boolean
        "modified_by": null                                 // nullable: fine
    });
    let mut problems: Vec<(String, Problem)> = spec
        .validate_named("ComponentUsage", &bad, Mode::Response)
        .into_iter()
        .map(|v| {
            (
                v.to_string().split(':').next().unwrap().to_string(),
                v.problem,
            )
        })
        .collect();
    problems.sort_by(|a, b| a.0.cmp(&b.0));
    let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.billing_period",
            "$.date",
            "$.missing_usage_policy",
            "$.recurring",
            "$.usage",
            "$.uuid"
        ]
    );
    // The same UUID is fine in a request (the server accepts the hyphenated form).
    let req = json!({"resource": "9B1F3E5D-7C2A-4B6E-8D0F-1A3C5E7B9D2F", "usages": []});
    assert!(
        spec.validate_named("ComponentUsageCreateRequest", &req, Mode::Request)
            .is_empty()
    );
    // A missing required property and a wrong item type are reported with their paths.
    let req = json!({"usages": [{"type": "cpu"}, {"type": "cpu", "amount": 5}]});
    let got: Vec<String> = spec
        .validate_named("ComponentUsageCreateRequest", &req, Mode::Request)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "$.usages[0].amount: Required",
            "$.usages[1].amount: Type { expected: \"string\" }"
        ]
    );
}

#[test]
fn every_response_validates_against_the_subset_schema() {
    let setup = small();
    let fake = FakeWaldur::start(setup.clone());
    let staff = Client::new(&fake, STAFF_TOKEN);
    let provider = Client::new(&fake, PROVIDER_TOKEN);
    let offering = setup.offering.uuid.clone();
    let r1 = uuid_of(&setup, "hpc_alloc1");
    let check = |client: &Client, method: &str, path: &str, body: Option<&Value>| -> Reply {
        let reply = client.call(method, path, body);
        let bare = path.split('?').next().unwrap();
        assert_valid_response(method, &format!("/api/{bare}"), &reply);
        reply
    };

    check(&provider, "GET", "users/me/", None);
    check(&staff, "GET", "users/me/", None);
    check(&staff, "GET", "version/", None);
    check(&provider, "GET", "version/", None);
    check(
        &provider,
        "GET",
        &format!("marketplace-provider-offerings/{offering}/"),
        None,
    );
    check(
        &provider,
        "GET",
        &format!(
            "marketplace-provider-offerings/{offering}/?field=components&field=customer_uuid&field=partitions&field=plugin_options"
        ),
        None,
    );
    check(
        &provider,
        "GET",
        &format!("marketplace-provider-offerings/{offering}/user-attribute-config/"),
        None,
    );
    check(
        &provider,
        "GET",
        &format!(
            "marketplace-service-providers/?customer_uuid={}&field=uuid",
            setup.offering.customer_uuid
        ),
        None,
    );
    check(
        &provider,
        "GET",
        "marketplace-provider-resources/?state=OK&state=Erred&page_size=100",
        None,
    );
    check(
        &provider,
        "GET",
        &format!("marketplace-provider-resources/{r1}/?field=uuid&field=name&field=backend_id"),
        None,
    );
    check(
        &provider,
        "GET",
        "marketplace-offering-users/?is_restricted=false",
        None,
    );
    check(
        &provider,
        "GET",
        &format!(
            "marketplace-offering-users/{}/",
            setup.offering_users[0].uuid
        ),
        None,
    );

    let set = json!({"resource": r1, "usages": [{"type": "cpu", "amount": "10.00"}, {"type": "mem", "amount": "2.50"}]});
    check(
        &provider,
        "POST",
        "marketplace-component-usages/set_usage/",
        Some(&set),
    );
    let list = check(
        &provider,
        "GET",
        &format!("marketplace-component-usages/?resource_uuid={r1}&billing_period=2026-07-01"),
        None,
    );
    let cu = list.json()[0]["uuid"].as_str().unwrap().to_string();
    check(
        &provider,
        "GET",
        &format!("marketplace-component-usages/{cu}/"),
        None,
    );
    let user_url = format!(
        "{}/api/marketplace-offering-users/{}/",
        fake.origin(),
        setup.offering_users[0].uuid
    );
    let bulk = json!({"usages": [{"username": "hpcuser1", "usage": "4.00", "user": user_url}, {"username": "hpcuser2", "usage": "6.00"}]});
    check(
        &provider,
        "POST",
        &format!("marketplace-component-usages/{cu}/set_user_usages/"),
        Some(&bulk),
    );
    check(
        &provider,
        "POST",
        &format!("marketplace-component-usages/{cu}/set_user_usage/"),
        Some(&json!({"username": "hpcuser3", "usage": "1.00"})),
    );
    let uu = check(
        &provider,
        "GET",
        "marketplace-component-user-usages/?component_usage__billing_period=2026-07-01",
        None,
    );
    let uu_uuid = uu.json()[0]["uuid"].as_str().unwrap().to_string();
    check(
        &provider,
        "GET",
        &format!("marketplace-component-user-usages/{uu_uuid}/"),
        None,
    );

    let mut ident = example("marketplace_site_agent_identities_create.request.json");
    ident["offering"] = json!(offering);
    ident["name"] = json!(format!("agent-{offering}"));
    let created = check(
        &provider,
        "POST",
        "marketplace-site-agent-identities/",
        Some(&ident),
    );
    assert_eq!(created.status, 201);
    let id = created.json()["uuid"].as_str().unwrap().to_string();
    check(
        &provider,
        "GET",
        &format!("marketplace-site-agent-identities/?name=agent-{offering}"),
        None,
    );
    let put = check(
        &provider,
        "PUT",
        &format!("marketplace-site-agent-identities/{id}/"),
        Some(&ident),
    );
    assert_eq!(put.status, 200);
    let service_body = example("marketplace_site_agent_identities_register_service.request.json");
    let svc = check(
        &provider,
        "POST",
        &format!("marketplace-site-agent-identities/{id}/register_service/"),
        Some(&service_body),
    );
    assert_eq!(svc.status, 201, "a new service is created");
    let svc = check(
        &provider,
        "POST",
        &format!("marketplace-site-agent-identities/{id}/register_service/"),
        Some(&service_body),
    );
    assert_eq!(svc.status, 200, "the existing service is returned");
    let sid = svc.json()["uuid"].as_str().unwrap().to_string();
    let proc_body = example("marketplace_site_agent_services_register_processor.request.json");
    let p = check(
        &provider,
        "POST",
        &format!("marketplace-site-agent-services/{sid}/register_processor/"),
        Some(&proc_body),
    );
    assert_eq!(p.status, 201);
    let p = check(
        &provider,
        "POST",
        &format!("marketplace-site-agent-services/{sid}/register_processor/"),
        Some(&proc_body),
    );
    assert_eq!(p.status, 200);
    // The identity now lists its service, and the service its processor.
    let listed = provider
        .get(&format!(
            "marketplace-site-agent-identities/?name=agent-{offering}"
        ))
        .json();
    assert_eq!(listed[0]["services"][0]["name"], "report");
    assert_eq!(
        svc.json()["processors"].as_array().map(Vec::len),
        Some(0),
        "processor came after"
    );

    // Error bodies are documented too.
    check(
        &provider,
        "GET",
        "marketplace-component-usages/?billing_period=July",
        None,
    );
    check(
        &provider,
        "GET",
        "marketplace-provider-resources/?page=9",
        None,
    );
    check(
        &provider,
        "GET",
        "marketplace-component-usages/00000000000000000000000000000000/",
        None,
    );
    check(
        &provider,
        "POST",
        "marketplace-component-usages/set_usage/",
        Some(&json!({"usages": "x"})),
    );
    let anonymous = Client {
        token: None,
        ..Client::new(&fake, "")
    };
    check(&anonymous, "GET", "users/me/", None);
}

// ---------------------------------------------------------------------------------------------
// The example requests, with a setup that uses the examples' UUIDs.

const EX_RESOURCE: &str = "9b1f3e5d7c2a4b6e8d0f1a3c5e7b9d2f";
const EX_OFFERING: &str = "5f2e1c7a9b3d4e8fa1c2d3e4f5a6b7c8";

fn example_setup() -> Setup {
    let mut setup = small();
    setup.offering.uuid = EX_OFFERING.into();
    setup.offering.components = ["cpu", "mem", "gpu"]
        .iter()
        .map(|t| ComponentSetup {
            type_: (*t).into(),
            billing_type: "usage".into(),
            measured_unit: "Hours".into(),
            unit_factor: 1,
        })
        .chain([ComponentSetup {
            type_: "storage".into(),
            billing_type: "limit".into(),
            measured_unit: "GB".into(),
            unit_factor: 1,
        }])
        .collect();
    setup.resources.push(ResourceSetup {
        uuid: EX_RESOURCE.into(),
        name: "Chemistry allocation".into(),
        backend_id: "hpc_alloc_chem01".into(),
        state: "OK".into(),
    });
    setup.offering_users = vec![
        OfferingUserSetup {
            uuid: "a7b8c9d0e1f24a3b8c4d5e6f7a8b9c0d".into(),
            username: "jdoe".into(),
        },
        OfferingUserSetup {
            uuid: "b8c9d0e1f2a34b4c9d5e6f7a8b9c0d1e".into(),
            username: "asmith".into(),
        },
    ];
    setup
}

fn usage_map(fake: &FakeWaldur) -> Vec<(String, String, String)> {
    fake.usages()
        .into_iter()
        .map(|u| (u.billing_period, u.component_type, u.usage))
        .collect()
}

fn strs(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn example_requests_are_accepted_with_201_and_an_empty_body() {
    let fake = FakeWaldur::start(example_setup());
    let staff = Client::new(&fake, STAFF_TOKEN);
    let provider = Client::new(&fake, PROVIDER_TOKEN);
    let set_usage = "marketplace-component-usages/set_usage/";

    // Report mode body: date 2026-07-01T00:00:00+00:00 is July, in the past of NOW.
    let r = provider.post(
        set_usage,
        &example("marketplace_component_usages_set_usage.request.json"),
    );
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-length")),
        (201, "", Some("0"))
    );
    // No date: the server's now (2026-07-09) picks July; cpu 146.99 is replaced by 12.50.
    let r = provider.post(
        set_usage,
        &example("marketplace_component_usages_set_usage.request.minimal.json"),
    );
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    // missing_usage_policy=reuse on a limit component.
    let r = provider.post(
        set_usage,
        &example("marketplace_component_usages_set_usage.request.reuse.json"),
    );
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    // Historical loader body: naive 2026-03-01T00:00:00 in server zone UTC is March; staff only.
    let r = staff.post(
        set_usage,
        &example("marketplace_component_usages_set_usage.request.backfill.json"),
    );
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    assert_eq!(
        usage_map(&fake),
        strs(&[
            ("2026-03-01", "cpu", "880.25"),
            ("2026-03-01", "mem", "1203.00"),
            ("2026-07-01", "cpu", "12.50"),
            ("2026-07-01", "gpu", "0.00"),
            ("2026-07-01", "mem", "311.50"),
            ("2026-07-01", "storage", "10.00"),
        ])
    );

    // Per-user examples, posted to the July cpu usage. Their `user` URLs name another host:
    // DRF resolves hyperlinks by path only.
    let cu = fake
        .usages()
        .into_iter()
        .find(|u| u.billing_period == "2026-07-01" && u.component_type == "cpu")
        .unwrap()
        .uuid;
    let r = provider.post(
        &format!("marketplace-component-usages/{cu}/set_user_usages/"),
        &example("marketplace_component_usages_set_user_usages.request.json"),
    );
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    let r = provider.post(
        &format!("marketplace-component-usages/{cu}/set_user_usage/"),
        &example("marketplace_component_usages_set_user_usage.request.json"),
    );
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    let users: Vec<(String, String, bool)> = fake
        .user_usages()
        .into_iter()
        .map(|u| (u.username, u.usage, u.user.is_some()))
        .collect();
    assert_eq!(
        users,
        [
            ("asmith".to_string(), "45.55".to_string(), true),
            ("jdoe".to_string(), "101.44".to_string(), true),
            ("legacy_user".to_string(), "0.00".to_string(), false),
        ]
    );
    // The parent total (12.50) is non-zero, so the user rows did not change it (§4.8).
    assert!(usage_map(&fake).contains(&("2026-07-01".into(), "cpu".into(), "12.50".into())));
}

// ---------------------------------------------------------------------------------------------
// Error bodies: the fake reproduces the example error files exactly.

#[test]
fn error_bodies_match_the_examples() {
    let setup = example_setup();
    let fake = FakeWaldur::start(setup.clone());
    let provider = Client::new(&fake, PROVIDER_TOKEN);
    let set_usage = "marketplace-component-usages/set_usage/";
    let erred = uuid_of(&setup, "hpc_erred");
    let expect = |reply: Reply, status: u16, file: &str| {
        assert_eq!(reply.status, status, "{file}: {}", reply.body);
        assert_eq!(reply.json(), example(file), "{file}");
    };

    let two_items = json!({"resource": EX_RESOURCE, "usages": [
        {"type": "cpu", "amount": "1.00"}, {"type": "mem", "amount": "1.005"}]});
    expect(
        provider.post(set_usage, &two_items),
        400,
        "error.400.set_usage.amount_decimal_places.json",
    );
    let past = json!({"resource": EX_RESOURCE, "date": "2026-06-15T12:00:00Z", "usages": [{"type": "cpu", "amount": "1.00"}]});
    expect(
        provider.post(set_usage, &past),
        400,
        "error.400.set_usage.backfill_usage_component_non_staff.json",
    );
    let bad_date = json!({"resource": EX_RESOURCE, "date": "01.07.2026", "usages": []});
    expect(
        provider.post(set_usage, &bad_date),
        400,
        "error.400.set_usage.bad_date_format.json",
    );
    let future = json!({"resource": EX_RESOURCE, "date": "2026-07-09T12:00:01Z", "usages": []});
    expect(
        provider.post(set_usage, &future),
        400,
        "error.400.set_usage.future_date.json",
    );
    let bogus =
        json!({"resource": EX_RESOURCE, "usages": [{"type": "bogus_component", "amount": "1"}]});
    expect(
        provider.post(set_usage, &bogus),
        400,
        "error.400.set_usage.invalid_components.json",
    );
    expect(
        provider.post(set_usage, &json!({"usages": []})),
        400,
        "error.400.set_usage.missing_target.json",
    );
    expect(
        provider.post(set_usage, &json!({"resource": EX_RESOURCE})),
        400,
        "error.400.set_usage.missing_usages.json",
    );
    let on_erred = json!({"resource": erred, "usages": [{"type": "cpu", "amount": "1"}]});
    expect(
        provider.post(set_usage, &on_erred),
        400,
        "error.400.set_usage.resource_state.json",
    );
    let unknown = json!({"resource": "00000000-0000-0000-0000-000000000000", "usages": []});
    expect(
        provider.post(set_usage, &unknown),
        400,
        "error.400.set_usage.unknown_resource.json",
    );

    assert_eq!(
        provider
            .post(
                set_usage,
                &json!({"resource": EX_RESOURCE, "usages": [{"type": "cpu", "amount": "0"}]})
            )
            .status,
        201
    );
    let cu = fake.usages()[0].uuid.clone();
    let bad_user = json!({"username": "jdoe", "usage": "1.00",
        "user": format!("{}/api/marketplace-offering-users/{}/", fake.origin(), "f".repeat(32))});
    expect(
        provider.post(
            &format!("marketplace-component-usages/{cu}/set_user_usage/"),
            &bad_user,
        ),
        400,
        "error.400.set_user_usage.bad_user_url.json",
    );

    expect(
        provider.get("marketplace-component-usages/?billing_period=2026-13-01"),
        400,
        "error.400.list.bad_filter.json",
    );
    expect(
        provider.get("marketplace-provider-resources/?state=Ok"),
        400,
        "error.400.list.bad_state.json",
    );
    expect(
        provider.get("marketplace-provider-resources/?page=2"),
        404,
        "error.404.invalid_page.json",
    );
    expect(
        provider.get(&format!("marketplace-component-usages/{}/", "0".repeat(32))),
        404,
        "error.404.not_found.json",
    );
    expect(
        provider.get("version/"),
        403,
        "error.403.permission_denied.json",
    );

    let anonymous = Client {
        token: None,
        ..Client::new(&fake, "")
    };
    let r = anonymous.get("users/me/");
    assert_eq!(r.header("www-authenticate"), Some("Token"));
    expect(r, 401, "error.401.missing_credentials.json");
    let wrong = Client::new(&fake, "not-a-real-token");
    let r = wrong.get("users/me/");
    assert_eq!(r.header("www-authenticate"), Some("Token"));
    expect(r, 401, "error.401.invalid_token.json");

    fake.inject(Fault::new(
        "GET",
        "users/me",
        FaultKind::TooManyRequests {
            retry_after_secs: 12,
        },
    ));
    let r = provider.get("users/me/");
    assert_eq!(r.header("retry-after"), Some("12"));
    expect(r, 429, "error.429.throttled.json");

    // None of the rejected requests changed anything: only the accepted cpu 0 row exists.
    assert_eq!(usage_map(&fake), strs(&[("2026-07-01", "cpu", "0.00")]));
}

// ---------------------------------------------------------------------------------------------
// Pagination.

#[test]
fn pagination_over_three_pages_with_links_and_count() {
    let setup = Setup {
        now: Some(NOW.into()),
        ..Setup::large(25, 0)
    };
    let fake = FakeWaldur::start(setup.clone());
    let client = Client::new(&fake, PROVIDER_TOKEN);
    let base = format!("{}/api/marketplace-provider-resources/", fake.origin());
    let off = &setup.offering.uuid;
    // The client's parameter order is not kept: DRF rebuilds links with sorted keys.
    let query = format!("state=OK&offering_uuid={off}&field=uuid&field=backend_id&page_size=10");
    let link = |page: Option<u32>| {
        let page = page.map(|p| format!("&page={p}")).unwrap_or_default();
        format!(
            "{base}?field=uuid&field=backend_id&offering_uuid={off}{page}&page_size=10&state=OK"
        )
    };

    let p1 = client.get(&format!("marketplace-provider-resources/?{query}"));
    assert_eq!(p1.status, 200);
    assert_eq!(p1.header("x-result-count"), Some("25"));
    // 25 items at 10 a page: pages of 10, 10 and 5.
    assert_eq!(
        p1.header("link").unwrap(),
        format!(
            "<{}>; rel=\"first\", <{}>; rel=\"next\", <{}>; rel=\"last\"",
            link(None),
            link(Some(2)),
            link(Some(3))
        )
    );
    let p2 = client.get(&format!("marketplace-provider-resources/?{query}&page=2"));
    // prev of page 2 is the first page, without a page parameter.
    assert_eq!(
        p2.header("link").unwrap(),
        format!(
            "<{}>; rel=\"first\", <{}>; rel=\"prev\", <{}>; rel=\"next\", <{}>; rel=\"last\"",
            link(None),
            link(None),
            link(Some(3)),
            link(Some(3))
        )
    );
    let p3 = client.get(&format!("marketplace-provider-resources/?{query}&page=3"));
    assert_eq!(
        p3.header("link").unwrap(),
        format!(
            "<{}>; rel=\"first\", <{}>; rel=\"prev\", <{}>; rel=\"last\"",
            link(None),
            link(Some(2)),
            link(Some(3))
        )
    );
    let mut seen = Vec::new();
    for (page, len) in [(&p1, 10), (&p2, 10), (&p3, 5)] {
        let items = page.json();
        let items = items.as_array().unwrap();
        assert_eq!(items.len(), len);
        for item in items {
            // field= keeps exactly the two requested fields.
            let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["backend_id", "uuid"]);
            seen.push(item["backend_id"].as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = (1..=25).map(|i| format!("hpc_alloc_{i:05}")).collect();
    assert_eq!(seen, expected, "stable order, no item twice, none missing");

    // Following rel="next" (an absolute URL) walks the same pages.
    let mut url = format!("{}marketplace-provider-resources/?{query}", fake.base_url());
    let mut pages = 0;
    loop {
        let r = try_call(&client.agent, "GET", &url, Some(PROVIDER_TOKEN), None).unwrap();
        pages += 1;
        let next = r
            .header("link")
            .unwrap()
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| {
                l.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string()
            });
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(pages, 3);

    assert_eq!(
        client
            .get(&format!("marketplace-provider-resources/?{query}&page=4"))
            .status,
        404
    );
    assert_eq!(
        client
            .get("marketplace-provider-resources/?page=abc")
            .status,
        404
    );
    // Default page size 10; page_size above 300 is clamped (25 fit on one page).
    assert_eq!(
        client
            .get("marketplace-provider-resources/")
            .json()
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let all = client.get("marketplace-provider-resources/?page_size=100000");
    assert_eq!(all.json().as_array().unwrap().len(), 25);
    let single = format!("{base}?page_size=100000");
    assert_eq!(
        all.header("link").unwrap(),
        format!("<{single}>; rel=\"first\", <{single}>; rel=\"last\"")
    );
    // HEAD: same headers, no body.
    let head = client.call(
        "HEAD",
        &format!("marketplace-provider-resources/?{query}"),
        None,
    );
    assert_eq!(
        (
            head.status,
            head.header("x-result-count"),
            head.body.as_str()
        ),
        (200, Some("25"), "")
    );
    // Clamp: 400 resources at page_size=1000 give 300 on the first page, 100 on the second.
    let big = FakeWaldur::start(Setup::large(400, 0));
    let c = Client::new(&big, PROVIDER_TOKEN);
    assert_eq!(
        c.get("marketplace-provider-resources/?page_size=1000")
            .json()
            .as_array()
            .unwrap()
            .len(),
        300
    );
    assert_eq!(
        c.get("marketplace-provider-resources/?page_size=1000&page=2")
            .json()
            .as_array()
            .unwrap()
            .len(),
        100
    );
}

// ---------------------------------------------------------------------------------------------
// Semantics.

#[test]
fn set_usage_replaces_and_user_usages_replace_and_fill_a_zero_total() {
    let setup = small();
    let fake = FakeWaldur::start(setup.clone());
    let c = Client::new(&fake, PROVIDER_TOKEN);
    let r1 = uuid_of(&setup, "hpc_alloc1");
    let post = |body: Value| {
        c.post("marketplace-component-usages/set_usage/", &body)
            .status
    };

    assert_eq!(
        post(
            json!({"resource": r1, "usages": [{"type": "cpu", "amount": "100"}, {"type": "mem", "amount": "7"}]})
        ),
        201
    );
    let first = fake.usages();
    assert_eq!(
        post(json!({"resource": r1, "usages": [{"type": "cpu", "amount": "5"}]})),
        201
    );
    let second = fake.usages();
    // Replace, not add: cpu is 5.00 (not 105.00); mem, not mentioned, keeps 7.00; same UUIDs.
    assert_eq!(
        usage_map(&fake),
        strs(&[("2026-07-01", "cpu", "5.00"), ("2026-07-01", "mem", "7.00")])
    );
    assert_eq!(
        first.iter().map(|u| &u.uuid).collect::<Vec<_>>(),
        second.iter().map(|u| &u.uuid).collect::<Vec<_>>()
    );
    assert_eq!(
        second[0].date, "2026-07-09T12:00:00+00:00",
        "no date: the server's now"
    );

    // User usages: replace keyed by username (10 becomes 99).
    let cpu = second[0].uuid.clone();
    let bulk = |items: Value| {
        c.post(
            &format!("marketplace-component-usages/{cpu}/set_user_usages/"),
            &json!({"usages": items}),
        )
        .status
    };
    assert_eq!(bulk(json!([{"username": "hpcuser1", "usage": "10"}])), 201);
    assert_eq!(
        bulk(
            json!([{"username": "hpcuser1", "usage": "99"}, {"username": "hpcuser2", "usage": "1.5"}])
        ),
        201
    );
    let users: Vec<(String, String)> = fake
        .user_usages()
        .into_iter()
        .map(|u| (u.username, u.usage))
        .collect();
    assert_eq!(
        users,
        [
            ("hpcuser1".to_string(), "99.00".to_string()),
            ("hpcuser2".to_string(), "1.50".to_string())
        ]
    );
    // The parent total 5.00 is not zero: unchanged by the user rows.
    assert_eq!(fake.usages()[0].usage, "5.00");

    // A zero parent takes the user sum: 2.25 + 0.75 = 3.00.
    assert_eq!(
        post(json!({"resource": r1, "usages": [{"type": "gres/gpu", "amount": "0.00"}]})),
        201
    );
    let gpu = fake
        .usages()
        .into_iter()
        .find(|u| u.component_type == "gres/gpu")
        .unwrap()
        .uuid;
    let r = c.post(&format!("marketplace-component-usages/{gpu}/set_user_usages/"),
        &json!({"usages": [{"username": "hpcuser1", "usage": "2.25"}, {"username": "hpcuser3", "usage": "0.75"}]}));
    assert_eq!(r.status, 201);
    assert_eq!(
        fake.usages()
            .into_iter()
            .find(|u| u.uuid == gpu)
            .unwrap()
            .usage,
        "3.00"
    );

    // Bulk is all-or-nothing: one bad item, nothing stored.
    let before = fake.user_usages();
    let r = c.post(&format!("marketplace-component-usages/{cpu}/set_user_usages/"),
        &json!({"usages": [{"username": "hpcuser3", "usage": "1.00"}, {"username": "hpcuser1", "usage": "1.001"}]}));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"usages": [{}, {"usage": ["Ensure that there are no more than 2 decimal places."]}]})
    );
    assert_eq!(fake.user_usages(), before);
    // An empty bulk list is refused.
    let r = c.post(
        &format!("marketplace-component-usages/{cpu}/set_user_usages/"),
        &json!({"usages": []}),
    );
    assert_eq!(
        (r.status, r.json()),
        (400, json!({"usages": ["This list may not be empty."]}))
    );
    // Unknown ComponentUsage: 404.
    let r = c.post(
        &format!(
            "marketplace-component-usages/{}/set_user_usage/",
            "0".repeat(32)
        ),
        &json!({"username": "x", "usage": "1"}),
    );
    assert_eq!(r.status, 404);
}

#[test]
fn backfill_rules_for_staff_and_provider_tokens() {
    let mut setup = small();
    setup.offering.components.push(ComponentSetup {
        type_: "storage".into(),
        billing_type: "limit".into(),
        measured_unit: "GB".into(),
        unit_factor: 1,
    });
    let fake = FakeWaldur::start(setup.clone());
    let staff = Client::new(&fake, STAFF_TOKEN);
    let provider = Client::new(&fake, PROVIDER_TOKEN);
    let r1 = uuid_of(&setup, "hpc_alloc1");
    let body = |date: &str, ty: &str| json!({"resource": r1, "date": date, "usages": [{"type": ty, "amount": "1.00"}]});
    let set = "marketplace-component-usages/set_usage/";

    // June is a past billing period on 2026-07-09: a provider may not backfill a usage component...
    let r = provider.post(set, &body("2026-06-15T12:00:00Z", "cpu"));
    assert_eq!((r.status, r.json()), (400, json!({"date": [BACKFILL_MSG]})));
    // ...nor smuggle it in with a limit component, but may send limit components alone...
    let mixed = json!({"resource": r1, "date": "2026-06-15T12:00:00Z", "usages": [
        {"type": "storage", "amount": "1"}, {"type": "cpu", "amount": "1"}]});
    assert_eq!(provider.post(set, &mixed).status, 400);
    assert_eq!(
        provider
            .post(set, &body("2026-06-15T12:00:00Z", "storage"))
            .status,
        201
    );
    // ...and any component with a date in the current month.
    assert_eq!(
        provider
            .post(set, &body("2026-07-01T00:00:00Z", "cpu"))
            .status,
        201
    );
    // Staff may backfill usage components; the mid-month date lands in June.
    assert_eq!(
        staff.post(set, &body("2026-06-15T12:00:00Z", "cpu")).status,
        201
    );
    // Nobody may report the future, staff included.
    assert_eq!(
        staff.post(set, &body("2026-07-10T00:00:00Z", "cpu")).status,
        400
    );
    // Per-user rows follow the same rules (on the June cpu usage).
    let june_cpu = fake
        .usages()
        .into_iter()
        .find(|u| u.billing_period == "2026-06-01" && u.component_type == "cpu")
        .unwrap()
        .uuid;
    let user = json!({"username": "hpcuser1", "usage": "1.00", "date": "2026-06-15T12:00:00Z"});
    let r = provider.post(
        &format!("marketplace-component-usages/{june_cpu}/set_user_usage/"),
        &user,
    );
    assert_eq!((r.status, r.json()), (400, json!({"date": [BACKFILL_MSG]})));
    assert_eq!(
        staff
            .post(
                &format!("marketplace-component-usages/{june_cpu}/set_user_usage/"),
                &user
            )
            .status,
        201
    );

    // The "+03:00 first of month" hazard: 2026-07-01T00:00:00+03:00 is 2026-06-30T21:00Z, June
    // on a UTC server, so the provider is refused.
    assert_eq!(
        provider
            .post(set, &body("2026-07-01T00:00:00+03:00", "cpu"))
            .status,
        400
    );

    assert_eq!(
        usage_map(&fake),
        strs(&[
            ("2026-06-01", "cpu", "1.00"),
            ("2026-06-01", "storage", "1.00"),
            ("2026-07-01", "cpu", "1.00"),
        ])
    );
}

#[test]
fn billing_month_is_computed_in_the_server_time_zone() {
    // SubmitUsageTest.test_usage_timezone_billing_period_calculation: with TIME_ZONE
    // Europe/Tallinn (UTC+3 in summer) a report at 2025-07-31T21:25Z is booked in August.
    let setup = Setup {
        now: Some("2025-07-31T21:25:00Z".into()),
        time_zone: "Europe/Tallinn".into(),
        ..Setup::small()
    };
    let fake = FakeWaldur::start(setup.clone());
    let staff = Client::new(&fake, STAFF_TOKEN);
    let r1 = uuid_of(&setup, "hpc_alloc1");
    let set = "marketplace-component-usages/set_usage/";
    assert_eq!(
        staff
            .post(
                set,
                &json!({"resource": r1, "usages": [{"type": "cpu", "amount": "1"}]})
            )
            .status,
        201
    );
    // A naive date is read in the server zone: 2025-03-01T00:00 Tallinn is March.
    assert_eq!(staff.post(set, &json!({"resource": r1, "date": "2025-03-01T00:00:00", "usages": [{"type": "mem", "amount": "2"}]})).status, 201);
    let got: Vec<(String, String, String)> = fake
        .usages()
        .into_iter()
        .map(|u| (u.billing_period, u.component_type, u.date))
        .collect();
    assert_eq!(
        got,
        [
            (
                "2025-03-01".to_string(),
                "mem".to_string(),
                "2025-03-01T00:00:00+02:00".to_string()
            ),
            (
                "2025-08-01".to_string(),
                "cpu".to_string(),
                "2025-08-01T00:25:00+03:00".to_string()
            ),
        ]
    );
}

#[test]
fn decimal_validation() {
    let setup = small();
    let fake = FakeWaldur::start(setup.clone());
    let c = Client::new(&fake, PROVIDER_TOKEN);
    let r1 = uuid_of(&setup, "hpc_alloc1");
    let send = |amount: Value| {
        c.post(
            "marketplace-component-usages/set_usage/",
            &json!({"resource": r1, "usages": [{"type": "cpu", "amount": amount}]}),
        )
    };
    let err = |r: Reply| {
        r.json()["usages"][0]["amount"][0]
            .as_str()
            .unwrap()
            .to_string()
    };

    assert_eq!(
        err(send(json!("1.005"))),
        "Ensure that there are no more than 2 decimal places."
    );
    assert_eq!(err(send(json!("1e3"))), "A valid number is required.");
    assert_eq!(err(send(json!(""))), "A valid number is required.");
    assert_eq!(
        err(send(json!("1234567890123456789"))),
        "Ensure that there are no more than 18 digits before the decimal point."
    );
    // The schema says string: a JSON number is a client bug the fake reports.
    assert_eq!(err(send(json!(1.5))), "Not a valid string.");
    assert!(
        fake.usages().is_empty(),
        "nothing stored from rejected bodies"
    );
    // Accepted forms are normalised to 2 places, as Waldur renders them.
    for (sent, stored) in [
        ("12", "12.00"),
        ("0.5", "0.50"),
        (".25", "0.25"),
        ("-1.1", "-1.10"),
        ("123456789012345678.99", "123456789012345678.99"),
    ] {
        assert_eq!(send(json!(sent)).status, 201, "{sent}");
        assert_eq!(fake.usages()[0].usage, stored, "{sent}");
    }
}

#[test]
fn resource_states_and_the_erred_switch() {
    let setup = small();
    let fake = FakeWaldur::start(setup.clone());
    let c = Client::new(&fake, PROVIDER_TOKEN);
    let body = |r: &str| json!({"resource": r, "usages": [{"type": "cpu", "amount": "1"}]});
    let set = "marketplace-component-usages/set_usage/";
    let r1 = uuid_of(&setup, "hpc_alloc1");
    for (state, status) in [
        ("Updating", 201),
        ("Terminating", 201),
        ("Creating", 400),
        ("Terminated", 400),
        ("OK", 201),
    ] {
        fake.set_resource_state(&r1, state);
        assert_eq!(c.post(set, &body(&r1)).status, status, "{state}");
    }
    let erred = uuid_of(&setup, "hpc_erred");
    assert_eq!(c.post(set, &body(&erred)).status, 400);
    let lenient = FakeWaldur::start(Setup {
        accept_erred: true,
        ..small()
    });
    assert_eq!(
        Client::new(&lenient, PROVIDER_TOKEN)
            .post(set, &body(&erred))
            .status,
        201
    );
    // The resource list filters by repeated state and by backend_id.
    let names = |q: &str| -> Vec<String> {
        c.get(&format!("marketplace-provider-resources/?{q}"))
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["backend_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("state=Erred"), ["hpc_erred"]);
    assert_eq!(
        names("state=OK&state=Erred"),
        ["hpc_alloc1", "hpc_alloc2", "hpc_erred"]
    );
    assert_eq!(names("backend_id=hpc_alloc2"), ["hpc_alloc2"]);
    assert_eq!(
        names(&format!("offering_uuid={}", "1".repeat(32))),
        Vec::<String>::new()
    );
}

#[test]
fn legacy_server_has_no_bulk_endpoint() {
    let setup = Setup {
        legacy_no_bulk_user_usages: true,
        ..small()
    };
    let fake = FakeWaldur::start(setup.clone());
    let c = Client::new(&fake, PROVIDER_TOKEN);
    let r1 = uuid_of(&setup, "hpc_alloc1");
    assert_eq!(
        c.post(
            "marketplace-component-usages/set_usage/",
            &json!({"resource": r1, "usages": [{"type": "cpu", "amount": "3"}]})
        )
        .status,
        201
    );
    let cu = fake.usages()[0].uuid.clone();
    let r = c.post(
        &format!("marketplace-component-usages/{cu}/set_user_usages/"),
        &json!({"usages": [{"username": "hpcuser1", "usage": "1"}]}),
    );
    assert_eq!((r.status, r.json()), (404, json!({"detail": "Not found."})));
    assert_eq!(
        c.post(
            &format!("marketplace-component-usages/{cu}/set_user_usage/"),
            &json!({"username": "hpcuser1", "usage": "1"})
        )
        .status,
        201
    );
    assert_eq!(fake.user_usages().len(), 1);
}

#[test]
fn lists_filter_order_and_select_fields() {
    let setup = Setup {
        existing_usages: vec![
            StoredUsage {
                uuid: "cc".repeat(16),
                resource_uuid: uuid_of(&Setup::small(), "hpc_alloc1"),
                component_type: "mem".into(),
                billing_period: "2026-06-01".into(),
                usage: "5".into(),
                date: "2026-06-30T10:00:00+00:00".into(),
            },
            StoredUsage {
                uuid: "dd".repeat(16),
                resource_uuid: uuid_of(&Setup::small(), "hpc_alloc2"),
                component_type: "cpu".into(),
                billing_period: "2026-06-01".into(),
                usage: "7.5".into(),
                date: "2026-06-30T10:00:00+00:00".into(),
            },
        ],
        existing_user_usages: vec![StoredUserUsage {
            uuid: "ee".repeat(16),
            component_usage_uuid: "cc".repeat(16),
            resource_uuid: uuid_of(&Setup::small(), "hpc_alloc1"),
            component_type: "mem".into(),
            billing_period: "2026-06-01".into(),
            username: "hpcuser2".into(),
            usage: "1".into(),
            user: None,
        }],
        ..small()
    };
    let fake = FakeWaldur::start(setup.clone());
    let c = Client::new(&fake, PROVIDER_TOKEN);
    let r1 = uuid_of(&setup, "hpc_alloc1");
    c.post("marketplace-component-usages/set_usage/", &json!({"resource": r1, "usages": [{"type": "mem", "amount": "1"}, {"type": "cpu", "amount": "2"}]}));
    // Ordering -date, type: July rows (newest) first, cpu before mem, then June cpu, mem.
    let all = c.get(&format!("marketplace-component-usages/?offering_uuid={}&field=type&field=billing_period&field=usage", setup.offering.uuid)).json();
    assert_eq!(
        all,
        json!([
            {"type": "cpu", "billing_period": "2026-07-01", "usage": "2.00"},
            {"type": "mem", "billing_period": "2026-07-01", "usage": "1.00"},
            {"type": "cpu", "billing_period": "2026-06-01", "usage": "7.50"},
            {"type": "mem", "billing_period": "2026-06-01", "usage": "5.00"},
        ])
    );
    let june_r1 = c
        .get(&format!(
            "marketplace-component-usages/?resource_uuid={r1}&billing_period=2026-06-01&field=uuid"
        ))
        .json();
    assert_eq!(june_r1, json!([{"uuid": "cc".repeat(16)}]));
    // Hyphenated UUIDs are accepted in filters.
    let hyph = format!(
        "{}-{}-{}-{}-{}",
        &r1[0..8],
        &r1[8..12],
        &r1[12..16],
        &r1[16..20],
        &r1[20..]
    );
    assert_eq!(
        c.get(&format!(
            "marketplace-component-usages/?resource_uuid={hyph}&type=cpu"
        ))
        .json()
        .as_array()
        .unwrap()
        .len(),
        1
    );
    assert_eq!(
        c.get("marketplace-component-usages/?resource_uuid=nope")
            .json(),
        json!({"resource_uuid": ["Enter a valid UUID."]})
    );
    // Unknown field names are ignored; none valid gives every field.
    let full = c.get("marketplace-component-usages/?field=bogus").json();
    assert_eq!(full[0].as_object().unwrap().len(), 20);
    // User usages: the seeded row, with its parent URL and filters.
    let uu = c.get("marketplace-component-user-usages/?component_usage__billing_period=2026-06-01&username=hpcuser2&field=component_usage&field=usage").json();
    assert_eq!(
        uu,
        json!([{"component_usage": format!("{}/api/marketplace-component-usages/{}/", fake.origin(), "cc".repeat(16)), "usage": "1.00"}])
    );
    assert_eq!(
        c.get("marketplace-component-user-usages/?component_usage__billing_period=2026-07-01")
            .json(),
        json!([])
    );
    // Offering users.
    let users = c.get(&format!("marketplace-offering-users/?offering_uuid={}&is_restricted=false&field=username&field=url", setup.offering.uuid)).json();
    assert_eq!(users.as_array().unwrap().len(), 3);
    assert_eq!(
        users[0],
        json!({"username": "hpcuser1", "url": format!("{}/api/marketplace-offering-users/{}/", fake.origin(), setup.offering_users[0].uuid)})
    );
    assert_eq!(
        c.get("marketplace-offering-users/?is_restricted=true")
            .json(),
        json!([])
    );
    assert_eq!(c.get("marketplace-offering-users/?state=Bogus").status, 400);
}

// ---------------------------------------------------------------------------------------------
// HTTP conventions, auth, logging.

#[test]
fn http_conventions_auth_and_request_log() {
    let fake = FakeWaldur::start(small());
    let c = Client::new(&fake, PROVIDER_TOKEN);
    assert_eq!(c.get("nothing-here/").status, 404);
    let r = c.call("DELETE", "marketplace-component-usages/", None);
    assert_eq!(
        (r.status, r.json()),
        (405, json!({"detail": "Method \"DELETE\" not allowed."}))
    );
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    let r = c.get("users/me");
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("/api/users/me/"))
    );
    // The keyword is case-insensitive; users/me says who is staff.
    let lower = try_call(&c.agent, "GET", &c.url("users/me/"), None, None).unwrap();
    assert_eq!(lower.status, 401);
    let r = c
        .agent
        .get(c.url("users/me/"))
        .header("Authorization", format!("token {STAFF_TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        c.get("users/me/?field=is_staff").json(),
        json!({"is_staff": false})
    );
    // Server Date header follows the server clock.
    assert_eq!(
        c.get("users/me/").header("date"),
        Some("Thu, 09 Jul 2026 12:00:00 GMT")
    );

    fake.clear_requests();
    let body = json!({"resource": Setup::small().resource_uuid("hpc_alloc1"), "usages": []});
    c.post("marketplace-component-usages/set_usage/", &body);
    c.get("marketplace-provider-resources/?state=OK&state=Erred");
    let log = fake.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("POST", "/api/marketplace-component-usages/set_usage/", 201)
    );
    assert_eq!(log[0].body, Some(body));
    assert_eq!(
        log[0].authorization.as_deref(),
        Some(format!("Token {PROVIDER_TOKEN}").as_str())
    );
    assert_eq!(log[0].user_agent.as_deref(), Some("fake-waldur-tests/1"));
    assert_eq!(
        log[1].query,
        [
            ("state".to_string(), "OK".to_string()),
            ("state".to_string(), "Erred".to_string())
        ]
    );
    assert_eq!(log[1].body, None);
    // The serialised log never carries the token.
    assert!(
        !serde_json::to_string(&log)
            .unwrap()
            .contains(PROVIDER_TOKEN)
    );
}

/// Sends raw bytes on one connection and reads `n` responses (status, body).
fn raw_exchange(fake: &FakeWaldur, requests: &[String]) -> Vec<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = Vec::new();
    for request in requests {
        stream.write_all(request.as_bytes()).unwrap();
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let mut len = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        out.push((status, String::from_utf8(body).unwrap()));
    }
    out
}

#[test]
fn keep_alive_and_chunked_bodies() {
    let setup = small();
    let fake = FakeWaldur::start(setup.clone());
    let r1 = uuid_of(&setup, "hpc_alloc1");
    let body = format!(r#"{{"resource":"{r1}","usages":[{{"type":"cpu","amount":"4.20"}}]}}"#);
    let (a, b) = body.split_at(10);
    let chunked = format!(
        "POST /api/marketplace-component-usages/set_usage/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {PROVIDER_TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let get = format!(
        "GET /api/marketplace-component-usages/?field=usage HTTP/1.1\r\nHost: x\r\nAuthorization: Token {PROVIDER_TOKEN}\r\n\r\n"
    );
    // Both requests on one connection: the second is answered after the first (keep-alive).
    let replies = raw_exchange(&fake, &[chunked, get]);
    assert_eq!(
        replies,
        [
            (201, String::new()),
            (200, r#"[{"usage":"4.20"}]"#.to_string())
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Faults.

#[test]
fn each_fault_kind_is_observable_and_consumed() {
    let setup = small();
    let fake = FakeWaldur::start(setup.clone());
    let c = Client::new(&fake, PROVIDER_TOKEN);
    let r1 = uuid_of(&setup, "hpc_alloc1");
    let set = "marketplace-component-usages/set_usage/";
    let body =
        |amount: &str| json!({"resource": r1, "usages": [{"type": "cpu", "amount": amount}]});

    // Status: twice on POST set_usage, not on GET; state untouched while it fires.
    fake.inject(Fault::new("POST", "set_usage", FaultKind::Status(503)).times(2));
    assert_eq!(c.get("marketplace-component-usages/").status, 200);
    let r = c.post(set, &body("1"));
    assert_eq!(
        (r.status, r.header("content-type")),
        (503, Some("text/html"))
    );
    assert_eq!(c.post(set, &body("2")).status, 503);
    assert!(fake.usages().is_empty());
    assert!(fake.pending_faults().is_empty());
    assert_eq!(c.post(set, &body("3")).status, 201);
    assert_eq!(fake.usages()[0].usage, "3.00");

    // 429 with Retry-After, on any method (method None).
    fake.inject(Fault {
        method: None,
        path_contains: "users/me".into(),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: 7,
        },
        times: 1,
        body_contains: None,
    });
    let r = c.get("users/me/");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));

    // Garbage: 200 whose body is not JSON; the POST was not applied.
    fake.inject(Fault::new("POST", "set_usage", FaultKind::Garbage));
    let r = c.post(set, &body("4"));
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.body).is_err());
    assert_eq!(fake.usages()[0].usage, "3.00");

    // Reset: the connection closes without an answer; logged with status 0; not applied.
    fake.inject(Fault::new("POST", "set_usage", FaultKind::Reset));
    let fresh = agent(Some(Duration::from_secs(5)));
    assert!(
        try_call(
            &fresh,
            "POST",
            &c.url(set),
            Some(PROVIDER_TOKEN),
            Some(&body("5"))
        )
        .is_err()
    );
    assert_eq!(fake.requests().last().map(|r| r.status), Some(0));
    assert_eq!(fake.usages()[0].usage, "3.00");

    // Delay past the client's timeout: the client gives up, the server still applies it.
    fake.inject(Fault::new(
        "POST",
        "set_usage",
        FaultKind::Delay(Duration::from_millis(600)),
    ));
    let impatient = agent(Some(Duration::from_millis(150)));
    let err = try_call(
        &impatient,
        "POST",
        &c.url(set),
        Some(PROVIDER_TOKEN),
        Some(&body("6")),
    )
    .unwrap_err();
    assert!(matches!(err, ureq::Error::Timeout(_)), "{err:?}");
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(fake.usages()[0].usage, "6.00");
    assert_eq!(fake.requests().last().map(|r| r.status), Some(201));

    // Latency applies to every request.
    fake.set_latency(Duration::from_millis(200));
    let t = std::time::Instant::now();
    c.get("users/me/");
    assert!(t.elapsed() >= Duration::from_millis(200));
}

// ---------------------------------------------------------------------------------------------
// Setup and the standalone runner.

#[test]
fn setup_reads_from_short_json() {
    let setup: Setup = serde_json::from_value(json!({
        "tokens": [{"token": "t1", "username": "agent"}],
        "offering": {"uuid": "0ffe".repeat(8), "name": "O", "customer_uuid": "c057".repeat(8),
                     "components": [{"type": "cpu"}]},
        "resources": [{"uuid": "a110".repeat(8), "name": "A", "backend_id": "acct"}],
        "latency": 25,
        "time_zone": "Europe/Tallinn"
    }))
    .unwrap();
    assert_eq!(setup.latency, Duration::from_millis(25));
    assert_eq!(setup.offering.components[0].billing_type, "usage");
    assert_eq!(setup.resources[0].state, "OK");
    assert!(!setup.tokens[0].is_staff);
    let small = Setup::small();
    assert_eq!(
        small
            .resources
            .iter()
            .map(|r| (r.backend_id.as_str(), r.state.as_str()))
            .collect::<Vec<_>>(),
        [
            ("hpc_alloc1", "OK"),
            ("hpc_alloc2", "OK"),
            ("hpc_erred", "Erred")
        ]
    );
    let large = Setup::large(1000, 3000);
    assert_eq!(
        (large.resources.len(), large.offering_users.len()),
        (1000, 3000)
    );
    assert!(
        large
            .resources
            .iter()
            .all(|r| crate::support::openapi::is_hex_uuid(&r.uuid))
    );
}

#[test]
fn standalone_runner_prints_its_url_serves_and_logs_without_tokens() {
    let exe = std::env::current_exe().unwrap();
    let runner = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/fake-waldur");
    if !runner.exists() {
        panic!("{} missing: cargo test builds examples", runner.display());
    }
    let dir = Scratch::new("fake-waldur");
    let log = dir.join("log.jsonl");
    let mut child = std::process::Command::new(&runner)
        .args(["--setup", "small", "--log", log.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first.trim().to_string();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/api/"),
        "{base}"
    );
    let a = agent(Some(Duration::from_secs(5)));
    let me = try_call(
        &a,
        "GET",
        &format!("{base}users/me/"),
        Some(PROVIDER_TOKEN),
        None,
    )
    .unwrap();
    assert_eq!(me.json()["username"], "slurm-agent-hpc1");
    drop(child.stdin.take()); // stdin closed: the runner stops
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            line["path"].as_str(),
            line["status"].as_u64(),
            line["auth_user"].as_str()
        ),
        (Some("/api/users/me/"), Some(200), Some("slurm-agent-hpc1"))
    );
    assert!(!text.contains(PROVIDER_TOKEN));
}

/// Timing of the fake at the size of the waldur-push request-budget test (1,000 resources,
/// 3,000 users, 3 components, 2 periods). Ignored by default (about 5 s in a debug build):
/// `cargo test --test suite fake_waldur::large_offering_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn large_offering_timing() {
    use std::time::Instant;
    let setup = Setup {
        now: Some(NOW.into()),
        ..Setup::large(1000, 3000)
    };
    let fake = FakeWaldur::start(setup.clone());
    let c = Client::new(&fake, STAFF_TOKEN);
    let dates = [
        ("2026-06-01", "2026-06-15T12:00:00Z"),
        ("2026-07-01", "2026-07-01T00:00:00Z"),
    ];
    let t = Instant::now();
    for (_, date) in dates {
        for r in &setup.resources {
            let body = json!({"resource": r.uuid, "date": date, "usages": [
                {"type": "cpu", "amount": "1.00"}, {"type": "mem", "amount": "2.00"}, {"type": "gres/gpu", "amount": "3.00"}]});
            assert_eq!(
                c.post("marketplace-component-usages/set_usage/", &body)
                    .status,
                201
            );
        }
    }
    eprintln!("2000 set_usage: {:?}", t.elapsed());
    let t = Instant::now();
    let usages = fake.usages();
    for (i, u) in usages.iter().enumerate() {
        let date = dates
            .iter()
            .find(|(p, _)| *p == u.billing_period)
            .unwrap()
            .1;
        let users: Vec<Value> = (0..3)
            .map(|k| json!({"username": format!("user{:05}", (i * 3 + k) % 3000 + 1), "usage": "1.00", "date": date}))
            .collect();
        let r = c.post(
            &format!("marketplace-component-usages/{}/set_user_usages/", u.uuid),
            &json!({"usages": users}),
        );
        assert_eq!(r.status, 201);
    }
    eprintln!("{} set_user_usages: {:?}", usages.len(), t.elapsed());
    // 6000 rows x 3 users = 18000 user usages, 9000 in July: 30 pages of 300.
    let t = Instant::now();
    let mut rows = 0;
    for page in 1..=30 {
        let r = c.get(&format!("marketplace-component-user-usages/?offering_uuid={}&component_usage__billing_period=2026-07-01&page_size=300&page={page}", setup.offering.uuid));
        rows += r.json().as_array().unwrap().len();
    }
    let elapsed = t.elapsed();
    eprintln!("30 pages of user usages: {elapsed:?}");
    assert_eq!(rows, 9000);
    assert!(
        elapsed < Duration::from_secs(30),
        "listing is too slow for the budget test"
    );
}

#[test]
fn roles_without_permissions_read_but_refuse_every_usage_post_with_403() {
    let setup = small().without_role_permissions();
    let fake = FakeWaldur::start(setup.clone());
    let r1 = uuid_of(&setup, "hpc_alloc1");
    let staff = Client::new(&fake, STAFF_TOKEN);
    let set = |c: &Client, amount: &str| {
        c.post(
            "marketplace-component-usages/set_usage/",
            &json!({"resource": r1, "usages": [{"type": "cpu", "amount": amount}]}),
        )
    };
    // Staff is not role-based: it still writes.
    assert_eq!(set(&staff, "3").status, 201);
    let c = Client::new(&fake, PROVIDER_TOKEN);
    assert_eq!(c.get("marketplace-component-usages/").status, 200);
    let forbidden = json!({"detail": "You do not have permission to perform this action."});
    let r = set(&c, "5");
    assert_eq!((r.status, r.json()), (403, forbidden.clone()));
    // The body is validated first (400 before 403), as in Waldur.
    assert_eq!(set(&c, "1.234").status, 400);
    let cu = fake.usages()[0].uuid.clone();
    let r = c.post(
        &format!("marketplace-component-usages/{cu}/set_user_usages/"),
        &json!({"usages": [{"username": "hpcuser1", "usage": "1"}]}),
    );
    assert_eq!((r.status, r.json()), (403, forbidden.clone()));
    let r = c.post(
        &format!("marketplace-component-usages/{cu}/set_user_usage/"),
        &json!({"username": "hpcuser1", "usage": "1"}),
    );
    assert_eq!((r.status, r.json()), (403, forbidden));
    assert_eq!(fake.usages()[0].usage, "3.00");
    assert!(fake.user_usages().is_empty());
}

#[test]
fn an_unstable_usage_order_breaks_ties_the_other_way_on_every_second_listing() {
    let mut setup = small();
    setup.unstable_usage_order = true;
    for (i, backend) in ["hpc_alloc1", "hpc_alloc2"].iter().enumerate() {
        setup.existing_usages.push(StoredUsage {
            uuid: det_uuid(0xeee0, i as u64 + 1),
            resource_uuid: uuid_of(&setup, backend),
            component_type: "cpu".into(),
            billing_period: "2024-03-01".into(),
            usage: "1.00".into(),
            date: "2024-03-19T00:00:00+00:00".into(),
        });
    }
    let fake = FakeWaldur::start(setup);
    let c = Client::new(&fake, PROVIDER_TOKEN);
    let order = || -> (Vec<String>, Option<String>) {
        let r = c.get("marketplace-component-usages/?field=uuid");
        let uuids = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["uuid"].as_str().unwrap().to_string())
            .collect();
        (uuids, r.header("x-result-count").map(str::to_string))
    };
    let (a, b) = (det_uuid(0xeee0, 1), det_uuid(0xeee0, 2));
    let two = Some("2".to_string());
    assert_eq!(order(), (vec![a.clone(), b.clone()], two.clone()));
    assert_eq!(order(), (vec![b.clone(), a.clone()], two.clone()));
    assert_eq!(order(), (vec![a, b], two));
}
