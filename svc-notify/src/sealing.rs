//! Sealing the content of notifications that hold a secret (an invitation or a password reset
//! link) under NOTIFY_ENCRYPTION_KEYS: at rest it opens only for its own notification, and it
//! is erased once every delivery of it is done.

use platform::context::TenantId;
use platform::crypto::Sealer;

use crate::domain::{NotificationId, Rendered};

/// Seals `content` of the notification `id` of `tenant`.
pub fn seal(
    sealer: &Sealer,
    tenant: TenantId,
    id: NotificationId,
    content: &Rendered,
) -> anyhow::Result<Vec<u8>> {
    let json = serde_json::to_vec(content)?;
    sealer.seal(&context(tenant, id), &json)
}

/// Opens the sealed content of the notification `id` of `tenant`.
pub fn open(
    sealer: &Sealer,
    tenant: TenantId,
    id: NotificationId,
    sealed: &[u8],
) -> anyhow::Result<Rendered> {
    let json = sealer.open(&context(tenant, id), sealed)?;
    Ok(serde_json::from_slice(&json)?)
}

/// What sealed content is bound to: its notification.
fn context(tenant: TenantId, id: NotificationId) -> String {
    format!("notify.notification/{tenant}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_content_opens_for_its_notification_only() {
        let sealer = Sealer::from_config(
            "NOTIFY_ENCRYPTION_KEYS",
            &"k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                .to_owned()
                .into(),
        )
        .unwrap();
        let (tenant, id) = (TenantId::generate(), NotificationId::generate());
        let content = Rendered {
            email_subject: "Reset your password".into(),
            email_text: "https://app.example.com/reset?token=secret".into(),
            ..Rendered::default()
        };
        let sealed = seal(&sealer, tenant, id, &content).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("secret"));
        assert_eq!(open(&sealer, tenant, id, &sealed).unwrap(), content);
        assert!(open(&sealer, tenant, NotificationId::generate(), &sealed).is_err());
        assert!(open(&sealer, TenantId::generate(), id, &sealed).is_err());
    }
}
