//! Signing in and out, the session cookie, CSRF, and the extractors every
//! screen uses: [`Staff`] (who is signed in, or a redirect to the sign-in
//! page) and [`Posted`] (a form whose CSRF token was checked).

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Admin;
use crate::actor::{Actor, Permission};
use crate::error::Error;

/// The session cookie's name: the engine's staff session token.
pub const SESSION_COOKIE: &str = "cw_admin";
/// The sign-in form's cookie: a random value the form repeats.
const LOGIN_COOKIE: &str = "cw_admin_login";
/// The device cookie: the token [`Engine::staff_login_from`] gave this
/// browser at its last sign-in, which spares it the account's lockout
/// (someone guessing a member's password elsewhere cannot lock them out
/// here).
///
/// [`Engine::staff_login_from`]: crate::Engine::staff_login_from
pub(crate) const DEVICE_COOKIE: &str = "cw_admin_device";
/// How long a browser is remembered as a member's device: 180 days.
const DEVICE_COOKIE_SECONDS: i64 = 180 * 24 * 3600;
/// The most bytes a form (not an upload) may have.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// The most fields a form may have.
const MAX_FORM_FIELDS: usize = 200;

/// The signed-in member of staff, from a live session.
#[derive(Clone)]
pub(crate) struct Staff {
    pub(crate) actor: Actor,
    /// A notice from the action that led here (`?notice=`).
    pub(crate) notice: Option<String>,
    pub(crate) token: String,
    pub(crate) name: String,
    pub(crate) permissions: BTreeSet<Permission>,
}

impl Staff {
    /// The CSRF token of this session: a digest of the session token, so
    /// only a page of this session can know it.
    pub(crate) fn csrf(&self) -> String {
        csrf_of(&self.token)
    }

    pub(crate) fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

fn csrf_of(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"cartwright-admin-csrf:");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

/// A cookie's value from the request's headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(admin: &Admin, name: &str, value: &str, max_age: i64) -> String {
    let path = if admin.config.base_path.is_empty() {
        "/".to_owned()
    } else {
        admin.config.base_path.clone()
    };
    let secure = if admin.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

fn to_login(admin: &Admin, notice: Option<&str>) -> Response {
    let mut to = admin.link("/login");
    if let Some(n) = notice {
        to.push_str("?notice=");
        to.extend(url::form_urlencoded::byte_serialize(n.as_bytes()));
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

impl FromRequestParts<Admin> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, admin: &Admin) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Err(to_login(admin, None));
        };
        match admin.engine.staff_actor(&token).await {
            Ok(actor) => {
                let (name, permissions) = match &actor {
                    Actor::StaffMember(access) => (access.name.clone(), access.permissions.clone()),
                    _ => (String::new(), BTreeSet::new()),
                };
                let notice = parts.uri.query().and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "notice")
                        .map(|(_, v)| v.chars().take(300).collect())
                });
                Ok(Staff {
                    actor,
                    notice,
                    token,
                    name,
                    permissions,
                })
            }
            Err(Error::InvalidToken) => Err(to_login(
                admin,
                Some("Your session has ended; sign in again. Nothing was changed."),
            )),
            Err(e) => Err(admin.failed(None, &e)),
        }
    }
}

/// A submitted form's fields, in order.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .take(MAX_FORM_FIELDS)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed ("" when absent).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Every value of `name` (checkboxes).
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub(crate) fn push(&mut self, name: String, value: String) {
        if self.0.len() < MAX_FORM_FIELDS {
            self.0.push((name, value));
        }
    }
}

/// Whether `given` is `expected` (constant time).
pub(crate) fn same(given: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// A form posted by the signed-in member, its CSRF token checked.
pub(crate) struct Posted {
    pub(crate) staff: Staff,
    pub(crate) form: Fields,
}

impl FromRequest<Admin> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, admin: &Admin) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let staff = Staff::from_request_parts(&mut parts, admin).await?;
        let body = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                admin.problem(
                    Some(&staff),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is too large.",
                )
            })?;
        let form = Fields::parse(&body);
        if !same(form.get("csrf"), &staff.csrf()) {
            return Err(forged(admin, Some(&staff)));
        }
        Ok(Posted { staff, form })
    }
}

/// The answer to a form whose CSRF token is missing or wrong.
pub(crate) fn forged(admin: &Admin, staff: Option<&Staff>) -> Response {
    admin.problem(
        staff,
        StatusCode::FORBIDDEN,
        "The form's security token is missing or wrong (open the page again and resend). Nothing was changed.",
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

pub(crate) async fn login_page(
    State(admin): State<Admin>,
    axum::extract::Query(q): axum::extract::Query<NoticeQuery>,
) -> Response {
    login_form(
        &admin,
        "",
        false,
        (!q.notice.is_empty()).then_some(q.notice.as_str()),
        None,
    )
}

fn login_form(
    admin: &Admin,
    email: &str,
    ask_code: bool,
    notice: Option<&str>,
    problem: Option<&str>,
) -> Response {
    let mut raw = [0_u8; 16];
    password_hash::rand_core::RngCore::fill_bytes(&mut password_hash::rand_core::OsRng, &mut raw);
    let nonce = hex::encode(raw);
    let page = admin.pages.render(
        admin,
        None,
        "login.html",
        context! { title => "Sign in", email, ask_code, notice, problem, login_csrf => nonce },
    );
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(admin, LOGIN_COOKIE, &nonce, 3600),
        )],
        page,
    )
        .into_response()
}

pub(crate) async fn login(State(admin): State<Admin>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Fields::parse(&body);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same(form.get("csrf"), &expected) {
        return login_form(
            &admin,
            form.get("email"),
            false,
            None,
            Some("The form expired or was not sent from this page; try again."),
        );
    }
    let code = Some(form.get("code")).filter(|c| !c.is_empty());
    let device = cookie(&headers, DEVICE_COOKIE);
    match admin
        .engine
        .staff_login_from(
            form.get("email"),
            form.get("password"),
            code,
            device.as_deref(),
        )
        .await
    {
        Ok(login) => {
            let ttl = (login.expires_at - admin.engine.now()).num_seconds().max(0);
            let mut response =
                (StatusCode::SEE_OTHER, [(header::LOCATION, admin.link("/"))]).into_response();
            let headers = response.headers_mut();
            for cookie in [
                set_cookie(&admin, SESSION_COOKIE, &login.token, ttl),
                set_cookie(&admin, LOGIN_COOKIE, "", 0),
                set_cookie(&admin, DEVICE_COOKIE, &login.device, DEVICE_COOKIE_SECONDS),
            ] {
                if let Ok(v) = cookie.parse() {
                    headers.append(header::SET_COOKIE, v);
                }
            }
            response
        }
        Err(Error::Incomplete(_)) => login_form(
            &admin,
            form.get("email"),
            true,
            Some("Enter the code from your authenticator app."),
            None,
        ),
        Err(Error::InvalidCredentials) => login_form(
            &admin,
            form.get("email"),
            code.is_some(),
            None,
            Some("Wrong email, password or code, or the account is locked or switched off."),
        ),
        Err(e) => admin.failed(None, &e),
    }
}

pub(crate) async fn logout(State(admin): State<Admin>, Posted { staff, .. }: Posted) -> Response {
    if let Err(e) = admin.engine.staff_logout(&staff.token).await {
        return admin.failed(Some(&staff), &e);
    }
    let mut response = to_login(&admin, Some("Signed out."));
    if let Ok(v) = set_cookie(&admin, SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

pub(crate) async fn totp_page(State(admin): State<Admin>, staff: Staff) -> Response {
    match admin.engine.begin_totp(&staff.actor).await {
        Ok(enrolment) => admin.pages.page(
            &admin,
            &staff,
            "totp.html",
            context! { title => "Two-factor sign-in", secret => enrolment.secret, uri => enrolment.uri },
        ),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn totp_confirm(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    match admin
        .engine
        .confirm_totp(&staff.actor, form.get("code"))
        .await
    {
        Ok(_) => admin.done("/", "Two-factor sign-in is on."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}
