//! The web console at `/`: an agent desktop, a supervisor dashboard and the
//! ops rules page, for people rather than scripts.
//!
//! The pages are one HTML shell with a small vanilla script and a style
//! sheet, all embedded in the binary (`assets/`, no build step). The script
//! signs in with the caller's own API token (kept in the tab's session
//! storage) and draws from the JSON API, so the console has exactly the
//! API's roles: an agent sees its own desktop and nothing else. It needs four
//! things the API did not have, which live here and are routes of the one
//! table ([`super::ROUTES`]):
//! - `GET /v1/me`: who a token is (role, agent), to open the right page;
//! - `GET /v1/agents/{id}/workspace`: the desktop with what a person needs
//!   beside it — capacity and load, each offer's expiry, due times, the
//!   customer's earlier contacts ([`contacts`]) and the item's case timeline;
//! - `GET /v1/board`: the supervisor's figures per queue (with today's
//!   service level per interval) and per agent group, in one answer;
//! - `GET /v1/events`: Server-Sent Events that say *something changed* (the
//!   journal's last ticket moved) so pages fetch again only then; a beat every
//!   few seconds keeps ages fresh. The stream carries no data of its own, so it
//!   needs no per-role filtering.

mod contacts;
mod views;

#[cfg(test)]
pub(crate) use contacts::Outcome;
pub(crate) use contacts::{Contact, ContactBook};
pub(crate) use views::{board, me, workspace};

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use super::api::AppState;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// How often a stream looks at the journal's last ticket: changes reach the
/// pages within this (a cheap read of one counter under the commit mutex).
const CHECK: Duration = Duration::from_millis(250);
/// A beat this often when nothing changed, so waits and countdowns shown are
/// refreshed from the daemon now and then (the page counts seconds itself).
const BEAT: Duration = Duration::from_secs(5);
/// A stream ends after this long and the page opens a new one: a connection
/// is not held for ever (and a token revoked since is refused at reconnect).
const STREAM_LIFETIME: Duration = Duration::from_secs(300);

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, body).into_response()
}

/// `GET /`: the console's page. Its policy allows only the console's own
/// script and styles, so text from the API that slipped past escaping still
/// could not run, and no other site may frame the page.
pub(crate) async fn index() -> Response {
    let mut page = asset("text/html; charset=utf-8", INDEX);
    page.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    page
}

/// `GET /console/console.js`.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /console/console.css`.
pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /v1/events`: `change` when the state moved (data: the journal ticket),
/// `beat` every [`BEAT`] otherwise; ends after [`STREAM_LIFETIME`], or within
/// [`CHECK`] of the daemon beginning to stop.
pub(crate) async fn events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Cursor {
        state: AppState,
        last: Option<u64>,
        beat: Instant,
        opened: Instant,
    }
    let start = Cursor { state, last: None, beat: Instant::now(), opened: Instant::now() };
    let stream = futures_util::stream::unfold(start, |mut c| async move {
        loop {
            if c.opened.elapsed() >= STREAM_LIFETIME || c.state.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let ticket = c.state.journal.last_ticket();
            if c.last != Some(ticket) {
                c.last = Some(ticket);
                c.beat = Instant::now();
                let event = Event::default().event("change").data(ticket.to_string());
                return Some((Ok(event), c));
            }
            if c.beat.elapsed() >= BEAT {
                c.beat = Instant::now();
                return Some((Ok(Event::default().event("beat").data("")), c));
            }
            tokio::time::sleep(CHECK).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
