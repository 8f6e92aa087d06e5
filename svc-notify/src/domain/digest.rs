//! Digests: the notifications of one recipient's topic on one channel, batched over a window,
//! sent as one message, worded by the tenant's `digest` template or by default.

use serde_json::{Map, Value, json};

use super::Notification;
use super::template::{self, Content, Rendered, TemplateKey, Variable};

/// Key of the template a tenant words its digests with.
pub const TEMPLATE_KEY: &str = "digest";

/// Most notifications a digest lists (its `count` counts them all).
pub const MAX_LISTED: usize = 50;

/// The key of the tenant's digest template.
pub fn template_key() -> TemplateKey {
    TemplateKey::parse(TEMPLATE_KEY).expect("a valid key")
}

/// What a digest template is rendered with: `topic`, `count`, `notifications` (the first
/// [`MAX_LISTED`], each with its rendered parts and `create_time`) and `link` (the newest
/// non-empty link).
pub fn data(topic: &str, notifications: &[Notification]) -> Map<String, Value> {
    let listed: Vec<Value> = notifications
        .iter()
        .take(MAX_LISTED)
        .map(|notification| {
            let content = &notification.content;
            json!({
                "subject": content.email_subject,
                "text": content.email_text,
                "html": content.email_html,
                "title": content.in_app_title,
                "body": content.in_app_body,
                "link": content.in_app_link,
                "create_time": notification.created_at.to_rfc3339(),
            })
        })
        .collect();
    let link = notifications
        .iter()
        .rev()
        .map(|notification| notification.content.in_app_link.as_str())
        .find(|link| !link.is_empty())
        .unwrap_or_default();
    let mut data = Map::new();
    data.insert("topic".into(), json!(topic));
    data.insert("count".into(), json!(notifications.len()));
    data.insert("notifications".into(), Value::Array(listed));
    data.insert("link".into(), json!(link));
    data
}

/// How a digest reads when the tenant has no `digest` template.
pub fn default_content() -> Content {
    const MORE: &str = "{% if count > notifications|length %}and {{ count - notifications|length }} more\n{% endif %}";
    Content {
        email_subject: "{{ count }} notifications: {{ topic }}".into(),
        email_text: format!(
            "{{% for n in notifications %}}{{{{ n.subject }}}}\n\n{{{{ n.text }}}}\n\n---\n\n{{% endfor %}}{MORE}"
        ),
        email_html: "{% for n in notifications %}<section>{% if n.html %}{{ n.html|safe }}\
                     {% else %}<h2>{{ n.subject }}</h2><p>{{ n.text }}</p>{% endif %}</section>\
                     <hr>{% endfor %}{% if count > notifications|length %}<p>and \
                     {{ count - notifications|length }} more</p>{% endif %}"
            .into(),
        in_app_title: "{{ count }} notifications: {{ topic }}".into(),
        in_app_body: format!(
            "{{% for n in notifications %}}- {{{{ n.title }}}}\n{{% endfor %}}{MORE}"
        ),
        in_app_link: "{{ link }}".into(),
    }
}

/// The digest of `notifications` (oldest first, at least two) of `topic`: worded by `custom`
/// (the tenant's template: its content and variables) when given and it renders, else by
/// default.
pub fn render(
    topic: &str,
    notifications: &[Notification],
    custom: Option<(&Content, &[Variable])>,
) -> Rendered {
    let data = data(topic, notifications);
    if let Some((content, variables)) = custom {
        match template::render(content, variables, &data) {
            Ok(rendered) => return rendered,
            Err(violations) => tracing::warn!(
                problems = ?violations.fields(),
                "the tenant's digest template did not render; using the default"
            ),
        }
    }
    template::render_inline(&default_content(), &data).expect("the default digest renders")
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use platform::context::TenantId;

    use super::*;
    use crate::domain::{NotificationId, Priority, Source};

    fn notification(title: &str, link: &str, html: &str) -> Notification {
        Notification {
            id: NotificationId::generate(),
            tenant_id: TenantId::generate(),
            topic: "ticket.new".into(),
            priority: Priority::Normal,
            template_id: None,
            source: Source::default(),
            transaction_id: None,
            dedup_key: None,
            content: Rendered {
                email_subject: title.into(),
                email_text: format!("About {title}"),
                email_html: html.into(),
                in_app_title: title.into(),
                in_app_body: format!("About {title}"),
                in_app_link: link.into(),
            },
            sealing: Default::default(),
            data: Map::new(),
            created_at: Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_default_digest_lists_each_notification_and_links_to_the_newest() {
        let notifications = [
            notification("Ticket 1", "/tickets/1", ""),
            notification("Ticket <2>", "/tickets/2", "<p>Two</p>"),
            notification("Ticket 3", "", ""),
        ];
        let digest = render("ticket.new", &notifications, None);
        assert_eq!(digest.email_subject, "3 notifications: ticket.new");
        assert_eq!(digest.in_app_title, "3 notifications: ticket.new");
        assert_eq!(digest.in_app_body, "- Ticket 1\n- Ticket <2>\n- Ticket 3\n");
        assert_eq!(digest.in_app_link, "/tickets/2");
        assert!(
            digest
                .email_text
                .starts_with("Ticket 1\n\nAbout Ticket 1\n\n---\n\n")
        );
        // The notifications' own HTML is kept; text is escaped.
        assert!(
            digest.email_html.contains("<p>Two</p>"),
            "{}",
            digest.email_html
        );
        assert!(digest.email_html.contains("<h2>Ticket 1</h2>"));
        assert!(!digest.email_html.contains("Ticket <2>"));
    }

    #[test]
    fn a_long_digest_lists_the_first_and_counts_the_rest() {
        let notifications: Vec<Notification> = (0..MAX_LISTED + 3)
            .map(|index| notification(&format!("Ticket {index}"), "", ""))
            .collect();
        let digest = render("ticket.new", &notifications, None);
        assert_eq!(
            digest.email_subject,
            format!("{} notifications: ticket.new", MAX_LISTED + 3)
        );
        assert_eq!(digest.in_app_body.lines().count(), MAX_LISTED + 1);
        assert!(
            digest.in_app_body.ends_with("and 3 more\n"),
            "{}",
            digest.in_app_body
        );
    }

    #[test]
    fn a_tenants_template_words_the_digest_unless_it_fails() {
        let notifications = [notification("A", "", ""), notification("B", "", "")];
        let custom = Content::inline(
            "Your {{ count }} {{ topic }} updates",
            "{{ notifications[1].title }}",
            "",
        );
        let variables = [Variable {
            name: "count".into(),
            description: String::new(),
            required: true,
        }];
        let digest = render("ticket.new", &notifications, Some((&custom, &variables)));
        assert_eq!(digest.email_subject, "Your 2 ticket.new updates");
        assert_eq!(digest.email_text, "B");
        let missing = [Variable {
            name: "agent".into(),
            description: String::new(),
            required: true,
        }];
        let digest = render("ticket.new", &notifications, Some((&custom, &missing)));
        assert_eq!(digest.email_subject, "2 notifications: ticket.new");
    }
}
