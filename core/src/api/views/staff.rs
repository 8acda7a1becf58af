//! Views of the staff directory and of the caller (`GET /api/v1/me`).

use super::{rfc3339, rfc3339_opt};
use crate::api::auth::{Caller, Credential};
use crate::domain::model::Millis;
use crate::infra::config::AgentVisibility;
use crate::store::{Role, StaffRow};
use serde::Serialize;
use utoipa::ToSchema;

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    /// Also assigns conversations to others, marks spam and manages the staff directory.
    Admin,
    Agent,
}

impl From<Role> for StaffRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => Self::Admin,
            Role::Agent => Self::Agent,
        }
    }
}

/// What a caller authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// An API token (`switchboard token create`).
    Token,
    /// A JWT from the frontend's login.
    Jwt,
}

impl AuthKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "token" => Some(Self::Token),
            "jwt" => Some(Self::Jwt),
            _ => None,
        }
    }
}

/// Which conversations a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationVisibility {
    /// Every conversation of the tenant.
    All,
    /// Those assigned to the caller, and unassigned ones.
    Assigned,
}

impl From<AgentVisibility> for ConversationVisibility {
    fn from(v: AgentVisibility) -> Self {
        match v {
            AgentVisibility::All => Self::All,
            AgentVisibility::Assigned => Self::Assigned,
        }
    }
}

/// An entry of the tenant's staff directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "alice", "display_name": "Alice Liddell", "email": "alice@acme.example",
    "active": true, "managed": true, "auth": "token", "role": "agent",
    "last_seen_at": "2026-05-01T12:34:56.789Z", "created_at": "2026-04-01T09:00:00Z",
    "updated_at": "2026-04-02T10:00:00Z"}))]
pub struct StaffView {
    /// The staff identity: an API token's name or a JWT's `sub`. Assignments, replies and
    /// the audit trail name staff by it.
    #[schema(example = "alice")]
    pub id: String,
    #[schema(example = "Alice Liddell")]
    pub display_name: Option<String>,
    #[schema(example = "alice@acme.example")]
    pub email: Option<String>,
    /// Inactive members cannot be assigned conversations.
    pub active: bool,
    /// Added or edited by an admin; otherwise only recorded when it authenticated.
    pub managed: bool,
    /// How it last authenticated; null if it never did.
    pub auth: Option<AuthKind>,
    /// The role it last authenticated with; null if it never did.
    pub role: Option<StaffRole>,
    /// When it last authenticated (recorded at most every few minutes).
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_seen_at: Option<Millis>,
    #[schema(value_type = String, format = DateTime, example = "2026-04-01T09:00:00Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
    #[schema(value_type = String, format = DateTime, example = "2026-04-02T10:00:00Z")]
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: Millis,
}

impl From<StaffRow> for StaffView {
    fn from(r: StaffRow) -> Self {
        Self {
            id: r.id,
            display_name: r.display_name,
            email: r.email,
            active: r.active,
            managed: r.managed,
            auth: r.auth_kind.as_deref().and_then(AuthKind::parse),
            role: r.role.as_deref().and_then(Role::parse).map(Into::into),
            last_seen_at: r.last_seen_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The caller: who the token or JWT says it is, with its directory entry's details.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "alice", "display_name": "Alice Liddell", "email": "alice@acme.example",
    "role": "agent", "tenant": "acme", "auth": "token", "token_id": "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b",
    "conversation_visibility": "assigned"}))]
pub struct MeView {
    /// The staff identity (API token name or JWT `sub`).
    #[schema(example = "alice")]
    pub id: String,
    /// From the staff directory.
    pub display_name: Option<String>,
    /// From the staff directory.
    pub email: Option<String>,
    pub role: StaffRole,
    #[schema(example = "acme")]
    pub tenant: String,
    pub auth: AuthKind,
    /// The API token's id (what `switchboard token revoke` takes); null for a JWT.
    pub token_id: Option<String>,
    /// Which conversations the caller sees (the tenant's `agent_visibility`; `all` for
    /// admins).
    pub conversation_visibility: ConversationVisibility,
}

impl MeView {
    pub fn new(caller: &Caller, entry: Option<StaffRow>, visibility: AgentVisibility) -> Self {
        let (auth, token_id) = match &caller.credential {
            Credential::Token { id } => (AuthKind::Token, Some(id.clone())),
            Credential::Jwt => (AuthKind::Jwt, None),
        };
        let (display_name, email) = entry.map(|e| (e.display_name, e.email)).unwrap_or_default();
        Self {
            id: caller.subject.clone(),
            display_name,
            email,
            role: caller.role.into(),
            tenant: caller.tenant.clone(),
            auth,
            token_id,
            conversation_visibility: visibility.into(),
        }
    }
}
