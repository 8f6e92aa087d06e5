//! Exporting a form's submissions as a file of any size: rows are read from one transaction
//! as the client takes the chunks, so memory stays constant and a client that goes away stops
//! the export.

use futures_util::StreamExt;
use platform::context::{Permission, RequestContext};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::{Forms, load};
use crate::error::Error;
use crate::export::{self, Encoder, Format};
use crate::store::{self, FormRef, SubmissionFilter};

/// Size from which a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;

/// An export under way: its media type and its chunks, as they are written. A failure part
/// way arrives as the last item.
#[derive(Debug)]
pub struct Export {
    /// The file's media type.
    pub content_type: &'static str,
    /// The file, chunk by chunk.
    pub chunks: mpsc::Receiver<Result<Vec<u8>, Error>>,
}

impl Forms {
    /// Starts exporting the submissions of `form` matching `filter`, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn export(
        &self,
        context: &RequestContext,
        form: &FormRef,
        filter: SubmissionFilter,
        format: Format,
    ) -> Result<Export, Error> {
        let tenant = context.authorize(Permission::SubmissionsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        let versions = match filter.form_version {
            Some(number) => vec![
                store::get_version(&mut transaction, tenant, form.id, number)
                    .await?
                    .ok_or_else(|| {
                        Error::VersionNotFound(format!("forms/{}/versions/{number}", form.id))
                    })?,
            ],
            None => store::list_versions(&mut transaction, tenant, form.id, None, i64::MAX).await?,
        };
        let mut encoder = Encoder::new(format, export::columns(&versions));
        // Room for one chunk in flight besides the one being written: the export runs at the
        // pace the client reads.
        let (sender, chunks) = mpsc::channel(1);
        let task = async move {
            let written = async {
                let mut rows =
                    store::stream_submissions(&mut transaction, tenant, form.id, &filter);
                let mut first = true;
                while let Some(submission) = rows.next().await {
                    encoder.push(&submission?);
                    if encoder.buffered() >= CHUNK_BYTES {
                        if sender.send(Ok(encoder.take())).await.is_err() {
                            return Ok(false);
                        }
                        first = false;
                    }
                }
                drop(rows);
                transaction.commit().await?;
                if first || encoder.buffered() > 0 {
                    let _ = sender.send(Ok(encoder.take())).await;
                }
                Ok::<_, Error>(true)
            }
            .await;
            match written {
                Ok(true) => {}
                Ok(false) => tracing::info!("the client left before the export ended"),
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                }
            }
        };
        tokio::spawn(task.instrument(tracing::Span::current()));
        Ok(Export {
            content_type: format.content_type(),
            chunks,
        })
    }
}
