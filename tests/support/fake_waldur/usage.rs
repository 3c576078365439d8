//! `set_usage`, `set_user_usage` and `set_user_usages` (`notes/waldur-api.md` §3.9–3.11,
//! §4 and the validation order of §6). All three answer 201 with an empty body.

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value, json};

use super::super::openapi::{normalize_uuid, parse_iso_datetime};
use super::http::Response;
use super::render;
use super::routes::{Ctx, Route, bad_request, detail, template};
use super::setup::{StoredUsage, StoredUserUsage, tags};
use super::state::{State, UsageRow, UserUsageRow, format_cents, parse_cents};
use super::validate::{self, DATETIME_FORMAT_MSG};

/// 400 for a non-staff caller backfilling a usage-based component into a past month (§4.3).
pub const BACKFILL_MSG: &str = "Service providers can only specify date for limit-based or prepaid billing components when backfilling past billing periods.";
/// 400 for a date in the future (§4.3, applies to staff too).
pub const FUTURE_MSG: &str = "Cannot submit usage for future dates.";
/// DRF's 403 body: the caller can see the object but lacks the permission.
pub const PERMISSION_MSG: &str = "You do not have permission to perform this action.";
/// Resource states that accept usage (§4.7).
const ACCEPTING_STATES: &[&str] = &["OK", "Updating", "Terminating"];

/// The billing types `set_usage` accepts (§4.5).
fn reportable(billing_type: &str) -> bool {
    matches!(billing_type, "usage" | "limit" | "one")
}

/// A parsed `date`: the instant, and its billing period in the server zone.
struct When {
    instant: Timestamp,
    period: Date,
}

/// Reads a `date` as DRF does: aware values as given, naive values in the server zone.
fn parse_date(state: &State, text: &str) -> Option<When> {
    let dt = parse_iso_datetime(text)?;
    let instant = match dt.offset_seconds {
        Some(secs) => {
            let offset = jiff::tz::Offset::from_seconds(secs).ok()?;
            offset.to_timestamp(dt.civil).ok()?
        }
        None => dt.civil.to_zoned(state.tz.clone()).ok()?.timestamp(),
    };
    Some(When {
        instant,
        period: state.billing_period(instant),
    })
}

/// The date rules of §4.3 for items of these component billing types. `Err` is the 400 body.
fn check_date_rules(
    state: &State,
    ctx: &Ctx,
    when: &When,
    billing_types: &[&str],
) -> Result<(), Value> {
    let now = state.now();
    if when.instant > now {
        return Err(json!({ "date": [FUTURE_MSG] }));
    }
    // Non-staff tokens act as the offering's service provider: a past billing period is
    // allowed only when no item is a usage-based component.
    let past = when.period < state.billing_period(now);
    if !ctx.user.is_staff && past && billing_types.contains(&"usage") {
        return Err(json!({ "date": [BACKFILL_MSG] }));
    }
    Ok(())
}

/// Step 8 of §6: staff may always write; other tokens act as the offering's provider, unless
/// the roles carry no permissions yet ([`State::roles_without_permissions`]).
fn forbidden(state: &State, ctx: &Ctx) -> Option<Response> {
    (state.roles_without_permissions && !ctx.user.is_staff).then(|| detail(403, PERMISSION_MSG))
}

fn period_text(d: Date) -> String {
    d.strftime("%Y-%m-%d").to_string()
}

/// `POST /api/marketplace-component-usages/set_usage/`.
pub fn set_usage(state: &mut State, ctx: &Ctx) -> Response {
    // 1. Body shape (schema: usages required, amounts 2-place decimal strings, formats).
    let body = match validate::body(
        super::super::openapi::Spec::subset(),
        "POST",
        template(&Route::SetUsage),
        &ctx.req.body,
    ) {
        Ok(body) => body,
        Err(errors) => return bad_request(errors),
    };
    let items = body["usages"].as_array().cloned().unwrap_or_default();
    let mut amounts = Vec::with_capacity(items.len());
    let mut item_errors = Vec::with_capacity(items.len());
    for item in &items {
        let text = item["amount"].as_str().unwrap_or_default();
        match parse_cents(text) {
            Some(c) => {
                amounts.push(c);
                item_errors.push(json!({}));
            }
            None => {
                amounts.push(0);
                item_errors.push(json!({ "amount": [validate::decimal_message(text)] }));
            }
        }
    }
    if item_errors
        .iter()
        .any(|e| e.as_object().is_some_and(|m| !m.is_empty()))
    {
        return bad_request(json!({ "usages": item_errors }));
    }
    // 2. The target resource.
    if let Some(plan_period) = body.get("plan_period").and_then(Value::as_str) {
        let hex = normalize_uuid(plan_period).unwrap_or_default();
        return bad_request(json!({
            "plan_period": [format!("Object with uuid={hex} does not exist.")]
        }));
    }
    let Some(resource_text) = body.get("resource").and_then(Value::as_str) else {
        return bad_request(json!({
            "non_field_errors": ["Either plan_period or resource should be provided."]
        }));
    };
    let resource_uuid = normalize_uuid(resource_text).unwrap_or_default();
    let Some(resource) = state.resource(&resource_uuid).cloned() else {
        return bad_request(json!({
            "resource": [format!("Object with uuid={resource_uuid} does not exist.")]
        }));
    };
    // 3. State.
    let erred_ok = state.accept_erred && resource.state == "Erred";
    if !ACCEPTING_STATES.contains(&resource.state.as_str()) && !erred_ok {
        return bad_request(json!({ "resource": ["Resource is not in valid state."] }));
    }
    // 4. (Every fake resource has a plan.) 5. Component types.
    let mut invalid: Vec<String> = Vec::new();
    let mut billing_types: Vec<&str> = Vec::new();
    for item in &items {
        let ty = item["type"].as_str().unwrap_or_default();
        match state.billing_type(ty) {
            Some(bt) if reportable(bt) => billing_types.push(bt),
            _ => {
                if !invalid.contains(&ty.to_string()) {
                    invalid.push(ty.to_string());
                }
            }
        }
    }
    if !invalid.is_empty() {
        return bad_request(json!({
            "non_field_errors": [format!("These components are invalid: {}.", invalid.join(", "))]
        }));
    }
    // 6./7. Date rules.
    let sent_date = body
        .get("date")
        .and_then(Value::as_str)
        .filter(|_| !state.ignores_date);
    let when = match sent_date {
        Some(text) => match parse_date(state, text) {
            Some(w) => {
                if let Err(e) = check_date_rules(state, ctx, &w, &billing_types) {
                    return bad_request(e);
                }
                w
            }
            None => return bad_request(json!({ "date": [DATETIME_FORMAT_MSG] })),
        },
        None => {
            let now = state.now();
            When {
                instant: now,
                period: state.billing_period(now),
            }
        }
    };
    // 8. Permission: staff, or the provider (every other fake token). Then upsert (§4.1).
    if let Some(response) = forbidden(state, ctx) {
        return response;
    }
    let period = period_text(when.period);
    let date = state.render(when.instant);
    let modified_by = Some(ctx.user_index as u64 + 1);
    for (item, mut cents) in items.iter().zip(amounts) {
        if state.tamper_writes > 0 {
            state.tamper_writes -= 1;
            cents += 100;
        }
        let ty = item["type"].as_str().unwrap_or_default().to_string();
        let description = item
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let policy = match (
            item.get("missing_usage_policy").and_then(Value::as_str),
            item.get("recurring").and_then(Value::as_bool),
        ) {
            (Some(p), _) => p.to_string(),
            (None, Some(true)) => "reuse".into(),
            _ => "none".into(),
        };
        match state.usage_index(&resource_uuid, &ty, &period) {
            Some(i) => {
                state.invalidate_orders();
                let row = &mut state.usages[i];
                row.stored.usage = format_cents(cents);
                row.stored.date = date.clone();
                row.instant = when.instant;
                row.description = description;
                row.policy = policy;
                row.modified_by = modified_by;
            }
            None => {
                let uuid = state.next_uuid(tags::COMPONENT_USAGE);
                let created = state.render(state.now());
                state.push_usage(UsageRow {
                    instant: when.instant,
                    stored: StoredUsage {
                        uuid,
                        resource_uuid: resource_uuid.clone(),
                        component_type: ty,
                        billing_period: period.clone(),
                        usage: format_cents(cents),
                        date: date.clone(),
                    },
                    created,
                    description,
                    policy,
                    modified_by,
                });
            }
        }
    }
    Response::empty(201)
}

/// One validated user-usage item, ready to apply.
struct UserItem {
    username: String,
    cents: i128,
    user_url: Option<String>,
    /// Target (resource, component, period) when the item has its own `date`.
    retarget: Option<(String, String, Timestamp)>,
}

/// Resolves a `user` hyperlink to an offering-user URL, or the DRF error message.
fn resolve_user(state: &State, origin: &str, url: &str) -> Result<String, String> {
    let path = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("/", |j| &url[i + 3 + j..]),
        None => url,
    };
    let uuid = path
        .strip_prefix("/api/marketplace-offering-users/")
        .and_then(|rest| rest.strip_suffix('/'))
        .filter(|rest| !rest.contains('/'))
        .ok_or("Invalid hyperlink - No URL match.")?;
    let uuid = normalize_uuid(uuid).ok_or("Invalid hyperlink - Object does not exist.")?;
    if state.has_offering_user(&uuid) {
        Ok(render::offering_user_url(origin, &uuid))
    } else {
        Err("Invalid hyperlink - Object does not exist.".into())
    }
}

/// `POST …/{uuid}/set_user_usage/` (`bulk == false`) and `…/set_user_usages/` (`bulk`).
pub fn set_user_usage(state: &mut State, ctx: &Ctx, path_uuid: &str, bulk: bool) -> Response {
    let parent = normalize_uuid(path_uuid)
        .and_then(|u| state.usage_by_uuid(&u))
        .map(|r| r.stored.clone());
    let Some(parent) = parent else {
        return detail(404, "No ComponentUsage matches the given query.");
    };
    let route = if bulk {
        Route::SetUserUsages(String::new())
    } else {
        Route::SetUserUsage(String::new())
    };
    let spec = super::super::openapi::Spec::subset();
    let body = match validate::body(spec, "POST", template(&route), &ctx.req.body) {
        Ok(body) => body,
        Err(errors) => return bad_request(errors),
    };
    let raw_items: Vec<Value> = if bulk {
        body["usages"].as_array().cloned().unwrap_or_default()
    } else {
        vec![body]
    };
    if bulk && raw_items.is_empty() {
        return bad_request(json!({ "usages": ["This list may not be empty."] }));
    }
    let billing_type = state
        .billing_type(&parent.component_type)
        .unwrap_or("usage")
        .to_string();
    // Validate every item first: the bulk call is all-or-nothing (§3.11).
    let mut items = Vec::with_capacity(raw_items.len());
    let mut errors = Vec::with_capacity(raw_items.len());
    for raw in &raw_items {
        let mut err = serde_json::Map::new();
        let usage_text = raw.get("usage").and_then(Value::as_str).unwrap_or("0");
        let cents = parse_cents(usage_text);
        if cents.is_none() {
            err.insert(
                "usage".into(),
                json!([validate::decimal_message(usage_text)]),
            );
        }
        let user_url = match raw.get("user").and_then(Value::as_str) {
            Some(url) => match resolve_user(state, &ctx.origin, url) {
                Ok(u) => Some(u),
                Err(msg) => {
                    err.insert("user".into(), json!([msg]));
                    None
                }
            },
            None => None,
        };
        let mut retarget = None;
        let sent_date = raw
            .get("date")
            .and_then(Value::as_str)
            .filter(|_| !state.ignores_date);
        if let Some(text) = sent_date {
            match parse_date(state, text) {
                Some(when) => {
                    if let Err(e) = check_date_rules(state, ctx, &when, &[billing_type.as_str()]) {
                        // The date rules answer at the top level, as for set_usage.
                        return bad_request(e);
                    }
                    retarget = Some((
                        period_text(when.period),
                        state.render(when.instant),
                        when.instant,
                    ));
                }
                None => {
                    err.insert("date".into(), json!([DATETIME_FORMAT_MSG]));
                }
            }
        }
        errors.push(Value::Object(err));
        items.push(UserItem {
            username: raw["username"].as_str().unwrap_or_default().to_string(),
            cents: cents.unwrap_or(0),
            user_url,
            retarget,
        });
    }
    if errors
        .iter()
        .any(|e| e.as_object().is_some_and(|m| !m.is_empty()))
    {
        return if bulk {
            bad_request(json!({ "usages": errors }))
        } else {
            bad_request(errors.into_iter().next().unwrap_or_default())
        };
    }
    if let Some(response) = forbidden(state, ctx) {
        return response;
    }
    // Apply.
    let now = state.render(state.now());
    let mut touched_parents: Vec<String> = Vec::new();
    for item in items {
        let parent_uuid = match &item.retarget {
            Some((period, date, instant)) if *period != parent.billing_period => {
                match state.usage_index(&parent.resource_uuid, &parent.component_type, period) {
                    Some(i) => state.usages[i].stored.uuid.clone(),
                    None => {
                        let uuid = state.next_uuid(tags::COMPONENT_USAGE);
                        state.push_usage(UsageRow {
                            instant: *instant,
                            stored: StoredUsage {
                                uuid: uuid.clone(),
                                resource_uuid: parent.resource_uuid.clone(),
                                component_type: parent.component_type.clone(),
                                billing_period: period.clone(),
                                usage: "0.00".into(),
                                date: date.clone(),
                            },
                            created: now.clone(),
                            description: String::new(),
                            policy: "none".into(),
                            modified_by: Some(ctx.user_index as u64 + 1),
                        });
                        uuid
                    }
                }
            }
            _ => parent.uuid.clone(),
        };
        let target = state
            .usage_by_uuid(&parent_uuid)
            .map(|u| u.stored.clone())
            .expect("the parent exists");
        match state.user_usage_index(&parent_uuid, &item.username) {
            Some(i) => {
                let row = &mut state.user_usages[i];
                row.stored.usage = format_cents(item.cents);
                if item.user_url.is_some() {
                    row.stored.user = item.user_url;
                }
                row.modified = now.clone();
            }
            None => {
                let uuid = state.next_uuid(tags::USER_USAGE);
                state.push_user_usage(UserUsageRow {
                    stored: StoredUserUsage {
                        uuid,
                        component_usage_uuid: parent_uuid.clone(),
                        resource_uuid: target.resource_uuid,
                        component_type: target.component_type,
                        billing_period: target.billing_period,
                        username: item.username,
                        usage: format_cents(item.cents),
                        user: item.user_url,
                    },
                    created: now.clone(),
                    modified: now.clone(),
                });
            }
        }
        if !touched_parents.contains(&parent_uuid) {
            touched_parents.push(parent_uuid);
        }
    }
    for p in touched_parents {
        state.sync_zero_total(&p);
    }
    Response::empty(201)
}
