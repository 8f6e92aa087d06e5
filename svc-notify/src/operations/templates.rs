//! Templates: create, read, list, update, delete, preview.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext};
use serde_json::{Map, Value, json};

use super::Notify;
use crate::domain::template;
use crate::domain::{Content, Rendered, Template, TemplateId, TemplateKey, Variable};
use crate::error::Error;
use crate::store;

/// A template to create.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// Its key.
    pub key: TemplateKey,
    /// Its display name.
    pub display_name: String,
    /// Its declared variables.
    pub variables: Vec<Variable>,
    /// Its parts.
    pub content: Content,
}

/// Changes to a template: each `Some` replaces the field.
#[derive(Debug, Clone, Default)]
pub struct TemplateChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New declared variables.
    pub variables: Option<Vec<Variable>>,
    /// New parts (each part the mask names replaced, the others kept).
    pub parts: Vec<(&'static str, String)>,
    /// The version the caller read (from its etag).
    pub expected_version: Option<i64>,
}

/// A template by id or by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    /// `templates/{id}`.
    Id(TemplateId),
    /// Its key.
    Key(TemplateKey),
}

impl std::fmt::Display for TemplateRef {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateRef::Id(id) => write!(formatter, "templates/{id}"),
            TemplateRef::Key(key) => write!(formatter, "{key}"),
        }
    }
}

/// What PreviewTemplate renders.
#[derive(Debug, Clone)]
pub enum PreviewSource {
    /// A saved template.
    Saved(TemplateRef),
    /// A template not saved.
    Unsaved {
        /// Its declared variables.
        variables: Vec<Variable>,
        /// Its parts.
        content: Content,
    },
}

/// A page of templates.
#[derive(Debug)]
pub struct TemplatePage {
    /// The templates, by key.
    pub templates: Vec<Template>,
    /// The key the next page starts after, when there is one.
    pub next_after: Option<String>,
}

/// Longest display name, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Most variables a template declares.
const MAX_VARIABLES: usize = 100;

/// Every problem of a template's name, variables and parts.
fn check_template(
    display_name: &str,
    variables: &[Variable],
    content: &Content,
) -> Result<(), Error> {
    let mut violations = template::check(content, variables);
    if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        violations.add(
            "template.display_name",
            format!("must be at most {MAX_DISPLAY_NAME_CHARS} characters"),
        );
    }
    if variables.len() > MAX_VARIABLES {
        violations.add(
            "template.variables",
            format!("must be at most {MAX_VARIABLES}"),
        );
    }
    Ok(violations.into_result()?)
}

impl Notify {
    /// Creates a template.
    pub async fn create_template(
        &self,
        context: &RequestContext,
        new: NewTemplate,
    ) -> Result<Template, Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        check_template(&new.display_name, &new.variables, &new.content)?;
        let now = Utc::now().trunc_subsecs(6);
        let template = Template {
            id: TemplateId::generate(),
            tenant_id: tenant,
            key: new.key,
            display_name: new.display_name,
            variables: new.variables,
            content: new.content,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if !store::insert_template(&mut transaction, &template).await? {
            return Err(Error::TemplateKeyTaken(template.key.to_string()));
        }
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "template.create",
                name(template.id),
                json!({"key": template.key.as_str()}),
            )
            .await?;
        transaction.commit().await?;
        Ok(template)
    }

    /// A template of the caller's tenant.
    pub async fn get_template(
        &self,
        context: &RequestContext,
        id: TemplateId,
    ) -> Result<Template, Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let template = store::find_template(&mut transaction, tenant, Some(id), None).await?;
        transaction.commit().await?;
        template.ok_or_else(|| Error::TemplateNotFound(name(id)))
    }

    /// A page of the tenant's templates by key, after the key `after`.
    pub async fn list_templates(
        &self,
        context: &RequestContext,
        after: Option<String>,
        page_size: usize,
    ) -> Result<TemplatePage, Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let rows = store::list_templates(
            &mut transaction,
            tenant,
            after.as_deref(),
            platform::paging::fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (templates, next_after) =
            platform::paging::split_page(rows, page_size, |last| last.key.to_string());
        Ok(TemplatePage {
            templates,
            next_after,
        })
    }

    /// Changes a template.
    pub async fn update_template(
        &self,
        context: &RequestContext,
        id: TemplateId,
        changes: TemplateChanges,
    ) -> Result<Template, Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut template = store::lock_template(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| Error::TemplateNotFound(name(id)))?;
        if changes
            .expected_version
            .is_some_and(|expected| expected != template.version)
        {
            return Err(platform::error::CommonError::EtagMismatch("template").into());
        }
        let mut changed: Vec<&str> = Vec::new();
        if let Some(display_name) = changes.display_name {
            template.display_name = display_name;
            changed.push("display_name");
        }
        if let Some(variables) = changes.variables {
            template.variables = variables;
            changed.push("variables");
        }
        for (part, text) in changes.parts {
            let content = &mut template.content;
            let slot = match part {
                "email_subject" => &mut content.email_subject,
                "email_text" => &mut content.email_text,
                "email_html" => &mut content.email_html,
                "in_app_title" => &mut content.in_app_title,
                "in_app_body" => &mut content.in_app_body,
                _ => &mut content.in_app_link,
            };
            *slot = text;
            changed.push(part);
        }
        check_template(
            &template.display_name,
            &template.variables,
            &template.content,
        )?;
        let (version, updated_at) = store::update_template(&mut transaction, &template).await?;
        template.version = version;
        template.updated_at = updated_at;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "template.update",
                name(id),
                json!({"fields": changed}),
            )
            .await?;
        transaction.commit().await?;
        Ok(template)
    }

    /// Deletes a template.
    pub async fn delete_template(
        &self,
        context: &RequestContext,
        id: TemplateId,
    ) -> Result<(), Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if !store::delete_template(&mut transaction, tenant, id).await? {
            return Err(Error::TemplateNotFound(name(id)));
        }
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "template.delete",
                name(id),
                Value::Null,
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Renders a template, saved or not, with `data` as a send would.
    pub async fn preview_template(
        &self,
        context: &RequestContext,
        source: PreviewSource,
        data: &Map<String, Value>,
    ) -> Result<Rendered, Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let (variables, content) = match source {
            PreviewSource::Saved(reference) => {
                let mut transaction = self.db.tenant_tx(tenant).await?;
                let template = find(&mut transaction, tenant, &reference).await?;
                transaction.commit().await?;
                let template =
                    template.ok_or_else(|| Error::TemplateNotFound(reference.to_string()))?;
                (template.variables, template.content)
            }
            PreviewSource::Unsaved { variables, content } => {
                check_template("", &variables, &content)?;
                (variables, content)
            }
        };
        Ok(template::render(&content, &variables, data)?)
    }
}

/// The template `reference` names in `tenant`.
pub(super) async fn find(
    connection: &mut sqlx::PgConnection,
    tenant: platform::context::TenantId,
    reference: &TemplateRef,
) -> Result<Option<Template>, Error> {
    let template = match reference {
        TemplateRef::Id(id) => store::find_template(connection, tenant, Some(*id), None).await?,
        TemplateRef::Key(key) => store::find_template(connection, tenant, None, Some(key)).await?,
    };
    Ok(template)
}

/// A template's resource name.
fn name(id: TemplateId) -> String {
    platform::wire::resource_name("templates", id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let limits = proto::published_limits("formflow.notify.v1.Template", "display_name");
        assert_eq!(limits.max_length as usize, super::MAX_DISPLAY_NAME_CHARS);
    }
}
