//! A preview: a few lessons sent right away through the provider's normal endpoint (OpenAI's
//! chat completions, Anthropic's Messages API), priced at standard prices, cleaned as a
//! batch's answers are and written to `<out>/preview/`, never into the course.
//!
//! The workflow has three parts, and only the middle one knows the provider: building the
//! requests ([`Job::plan_preview`]: the batch's own builder, so the same template and
//! settings give the same body), sending one request and reading its answer as a Batch API
//! response, hence an [`Outcome`] with its usage (`send_openai`; `send_anthropic`, through
//! the batches' own translation to Messages API parameters and back), and cleaning, writing
//! and pricing it (shared).
//!
//! Nothing of a preview reaches the job's folder, the ledger, the manifest or any batch: its
//! requests are only held in memory, its files only in `<out>/preview/`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use batch_request::{
    ApiError as LineApiError, LessonRequest, ModelPrice, RequestTokens, ResponseBody,
    ResponseEnvelope, ResultLine, Usage,
};
use curriculum_parser::LessonCode;
use futures::StreamExt;
use lesson_writer::{BelowSpec, FailureKind, Outcome};

use crate::observer::{JobObserver, Step};
use crate::provider::params::message_params;
use crate::round::{request_builder, tempfile_in};
use crate::{Error, Job, Provider, ProviderClient};

/// The folder of `<out>` that previews are written to.
pub const PREVIEW_DIR: &str = "preview";

/// How many preview requests are in flight at once.
pub const PREVIEW_CONCURRENCY: usize = 4;

/// The lessons of a preview, built and priced at standard prices; nothing sent yet.
#[derive(Debug)]
pub struct PreviewPlan {
    /// Where the lessons go: `<out>/preview/`.
    pub dir: PathBuf,
    /// The model of every request.
    pub model: String,
    /// The cost of the requests at standard (synchronous) prices.
    pub cost: PreviewCost,
    requests: Vec<LessonRequest>,
}

/// The tokens and cost of a preview's requests at standard (synchronous) prices: the normal
/// endpoint does not get the Batch API's discount.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PreviewCost {
    /// How many requests.
    pub requests: u64,
    /// Input tokens, chat message overhead included.
    pub input_tokens: u64,
    /// Output tokens expected from the lessons' complexity.
    pub expected_output_tokens: u64,
    /// Output tokens if every request used its whole `max_completion_tokens`.
    pub max_output_tokens: u64,
    /// Expected cost in USD; `None` when the model has no price.
    pub expected_usd: Option<f64>,
    /// Upper-bound cost in USD (input plus `max_output_tokens`); `None` without a price.
    pub max_usd: Option<f64>,
}

/// What a preview did, lesson by lesson, in the order the lessons were given.
#[derive(Debug)]
pub struct PreviewReport {
    /// Where the lessons went: `<out>/preview/`.
    pub dir: PathBuf,
    /// The model asked.
    pub model: String,
    /// One entry per lesson.
    pub lessons: Vec<PreviewedLesson>,
    /// The usage the server reported, summed.
    pub usage: Usage,
    /// What the reported usage costs at standard prices; `None` when the model has no price.
    pub cost_usd: Option<f64>,
}

impl PreviewReport {
    /// The lessons that got no file.
    pub fn failed(&self) -> impl Iterator<Item = &PreviewedLesson> {
        self.lessons
            .iter()
            .filter(|lesson| matches!(lesson.outcome, PreviewOutcome::Failed { .. }))
    }
}

/// One lesson of a preview.
#[derive(Debug)]
pub struct PreviewedLesson {
    /// The lesson.
    pub code: LessonCode,
    /// Its title in the outline.
    pub title: String,
    /// What became of it.
    pub outcome: PreviewOutcome,
    /// The usage the server reported, when it answered.
    pub usage: Option<Usage>,
    /// That usage at standard prices.
    pub cost_usd: Option<f64>,
}

/// What became of one lesson of a preview.
#[derive(Debug)]
pub enum PreviewOutcome {
    /// The cleaned answer was written.
    Written {
        /// The file in `<out>/preview/`.
        path: PathBuf,
        /// What the quality gate found short; a preview is written anyway, for a look.
        below_spec: Option<BelowSpec>,
    },
    /// No usable answer.
    Failed {
        /// Why, as a batch's result would be classified.
        kind: FailureKind,
        /// What happened and what to do.
        reason: String,
    },
}

impl Job {
    /// Builds the preview requests of `codes` (in their order, each once) with the same
    /// builder, template and settings as a batch's requests, and prices them at standard
    /// prices. Writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownLessons`] naming every code that is not a lesson of the outline;
    /// [`Error::Request`] when a request cannot be built; for an Anthropic job,
    /// [`Error::UnsupportedParameter`] when a request has no Messages API counterpart, as
    /// its batch would be refused (before anything is priced or sent).
    pub fn plan_preview(&self, codes: &[LessonCode]) -> Result<PreviewPlan, Error> {
        let mut seen = BTreeSet::new();
        let codes: Vec<LessonCode> = codes.iter().copied().filter(|c| seen.insert(*c)).collect();
        let unknown: Vec<LessonCode> = codes
            .iter()
            .copied()
            .filter(|code| self.curriculum().lesson(*code).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(Error::UnknownLessons {
                codes: unknown,
                outline: self.spec().outline.clone(),
            });
        }
        let settings = self.settings();
        let builder = request_builder(
            self.curriculum(),
            self.outline_text(),
            &self.spec().template,
            settings,
            &self.id().to_string(),
        );
        let price = settings.price_table().get(&settings.model).copied();
        let mut estimator = batch_request::Estimator::new(settings);
        let mut cost = PreviewCost {
            expected_usd: price.map(|_| 0.0),
            max_usd: price.map(|_| 0.0),
            ..PreviewCost::default()
        };
        let mut requests = Vec::with_capacity(codes.len());
        for code in codes {
            let Some(lesson) = self.curriculum().lesson(code) else {
                continue;
            };
            let request = builder.build(lesson)?;
            if self.provider() == Provider::Anthropic {
                message_params(request.request.body.clone())?;
            }
            cost.add(estimator.add(&request), price.as_ref());
            requests.push(request);
        }
        Ok(PreviewPlan {
            dir: self.paths().out_dir.join(PREVIEW_DIR),
            model: settings.model.clone(),
            cost,
            requests,
        })
    }

    /// Sends the plan's requests through `client`'s normal endpoint, a few at a time, and
    /// writes each answer, cleaned as a batch's answers are, to `<out>/preview/` under its
    /// normal file name (an earlier preview's file is replaced). The observer hears of each
    /// answer as [`Step::PreviewAnswered`].
    ///
    /// An OpenAI client sends the batch's body to chat completions; an Anthropic client sends
    /// it to the Messages API as the job's message batches would ([`ProviderClient`] decides,
    /// so build it for [`Job::provider`]). Either answer is read as a Batch API response, so
    /// outcomes and failure kinds are a batch's.
    ///
    /// An answer the API refuses for that request alone (OpenAI: 400, 404, 422; Anthropic: 400,
    /// 404, 413, such as an `invalid_request_error` or an unknown model) and an unusable answer
    /// (truncated, refused, empty) are the lesson's failure; any other error ends the preview
    /// (lessons written before stay).
    ///
    /// # Errors
    ///
    /// [`Error::Client`] or [`Error::Anthropic`] for a failure that is not one lesson's (key,
    /// quota, network, server after retries), [`Error::UnsupportedParameter`] for a request
    /// Anthropic's Messages API cannot take, [`Error::Io`] when `<out>/preview/` or a file
    /// cannot be written.
    pub async fn preview(
        &self,
        plan: &PreviewPlan,
        client: impl Into<ProviderClient>,
        observer: &dyn JobObserver,
    ) -> Result<PreviewReport, Error> {
        let client = &client.into();
        let dir = &plan.dir;
        std::fs::create_dir_all(dir).map_err(|source| Error::io("create", dir, source))?;
        let price = self.settings().price_table().get(&plan.model).copied();
        let gate = self.quality_gate();
        let mut report = PreviewReport {
            dir: dir.clone(),
            model: plan.model.clone(),
            lessons: Vec::with_capacity(plan.requests.len()),
            usage: Usage::default(),
            cost_usd: price.map(|_| 0.0),
        };
        let mut answers = futures::stream::iter(&plan.requests)
            .map(|request| async move { (request, send(client, request).await) })
            .buffered(PREVIEW_CONCURRENCY);
        let total = plan.requests.len();
        while let Some((request, answer)) = answers.next().await {
            let (outcome, usage) = answer?;
            let outcome = match outcome {
                Outcome::Answer(text) => {
                    let cleaned = lesson_writer::clean(&text, request.code, Some(&request.title));
                    let below_spec = gate.check(&cleaned.text).err();
                    let name = self
                        .spec()
                        .file_name
                        .file_name(request.code, Some(&request.title));
                    let path = dir.join(name);
                    write_file(dir, &path, cleaned.text.as_bytes())?;
                    PreviewOutcome::Written { path, below_spec }
                }
                Outcome::Failed(failed) => PreviewOutcome::Failed {
                    kind: failed.kind,
                    reason: failed.reason,
                },
            };
            let cost_usd = match (usage, price) {
                (Some(usage), Some(price)) => Some(price.standard_cost(
                    usage.prompt_tokens,
                    usage.cached_tokens(),
                    usage.completion_tokens,
                )),
                _ => None,
            };
            if let Some(usage) = usage {
                add_usage(&mut report.usage, &usage);
            }
            report.cost_usd = match (report.cost_usd, cost_usd, usage) {
                (Some(sum), Some(cost), _) => Some(sum + cost),
                // An answer without usage leaves the sum as it is: nothing is known to add.
                (Some(sum), None, None) => Some(sum),
                _ => None,
            };
            report.lessons.push(PreviewedLesson {
                code: request.code,
                title: request.title.clone(),
                outcome,
                usage,
                cost_usd,
            });
            observer.step(Step::PreviewAnswered {
                code: request.code,
                done: report.lessons.len(),
                total,
            });
        }
        Ok(report)
    }
}

impl PreviewPlan {
    /// The lessons of the plan, in the order they are sent.
    pub fn lessons(&self) -> impl Iterator<Item = LessonCode> + '_ {
        self.requests.iter().map(|request| request.code)
    }
}

impl PreviewCost {
    fn add(&mut self, tokens: RequestTokens, price: Option<&ModelPrice>) {
        self.requests += 1;
        self.input_tokens += tokens.input;
        self.expected_output_tokens += tokens.expected_output;
        self.max_output_tokens += tokens.max_output;
        if let Some(price) = price {
            if let Some(sum) = &mut self.expected_usd {
                *sum += price.standard_cost(tokens.input, 0, tokens.expected_output);
            }
            if let Some(sum) = &mut self.max_usd {
                *sum += price.standard_cost(tokens.input, 0, tokens.max_output);
            }
        }
    }
}

/// Sends one request through `client`'s provider and reads the answer as a batch's result
/// line would be read, so the outcome and failure kinds are the same.
async fn send(
    client: &ProviderClient,
    request: &LessonRequest,
) -> Result<(Outcome, Option<Usage>), Error> {
    let response = match client {
        ProviderClient::OpenAi(client) => send_openai(client, request).await?,
        ProviderClient::Anthropic(client) => send_anthropic(client, request).await?,
    };
    let usage = response.body.usage;
    let mut line = ResultLine {
        id: None,
        custom_id: request.request.custom_id.clone(),
        response: Some(response),
        error: None,
    };
    let outcome =
        lesson_writer::classify(&mut line).expect("a line with a response always classifies");
    Ok((outcome, usage))
}

/// Sends one request to OpenAI's chat completions endpoint; the answer, or a refusal of this
/// request alone, as the Batch API's response.
async fn send_openai(
    client: &openai_batch_client::Client,
    request: &LessonRequest,
) -> Result<ResponseEnvelope, Error> {
    Ok(
        match client
            .chat_completion::<_, ResponseBody>(&request.request.body)
            .await
        {
            Ok(body) => ResponseEnvelope {
                status_code: 200,
                request_id: body.id.clone(),
                body,
            },
            Err(openai_batch_client::Error::Api(api)) if matches!(api.status, 400 | 404 | 422) => {
                ResponseEnvelope {
                    status_code: api.status,
                    request_id: api.request_id.clone(),
                    body: ResponseBody {
                        error: Some(LineApiError {
                            message: api.message.clone(),
                            kind: api.error_type.clone(),
                            param: api.param.clone(),
                            code: api.code.clone(),
                        }),
                        ..ResponseBody::default()
                    },
                }
            }
            Err(err) => return Err(err.into()),
        },
    )
}

/// Sends one request to Anthropic's Messages API, with the parameters its message batch
/// would carry; the answer, or a refusal of this request alone, as the Batch API's response
/// (as `lesson-writer` reads a message batch's result lines).
async fn send_anthropic(
    client: &anthropic_batch_client::Client,
    request: &LessonRequest,
) -> Result<ResponseEnvelope, Error> {
    let params = message_params(request.request.body.clone())?;
    Ok(match client.create_message(&params).await {
        Ok(message) => lesson_writer::anthropic::response(message),
        // The request's own fault: malformed or too large for the API, or a model it does not
        // know. A key, billing, rate or server problem is everyone's, and ends the preview.
        Err(anthropic_batch_client::Error::Api(api)) if matches!(api.status, 400 | 404 | 413) => {
            ResponseEnvelope {
                status_code: api.status,
                request_id: api.request_id.clone(),
                body: ResponseBody {
                    error: Some(LineApiError {
                        message: api.message.clone(),
                        kind: api.error_type.map(|kind| kind.as_str().to_owned()),
                        param: None,
                        code: None,
                    }),
                    ..ResponseBody::default()
                },
            }
        }
        Err(err) => return Err(err.into()),
    })
}

fn add_usage(sum: &mut Usage, usage: &Usage) {
    sum.prompt_tokens += usage.prompt_tokens;
    sum.completion_tokens += usage.completion_tokens;
    sum.total_tokens += usage.total_tokens;
    let cached = sum.cached_tokens() + usage.cached_tokens();
    if cached > 0 {
        sum.prompt_tokens_details = Some(batch_request::PromptTokensDetails {
            cached_tokens: cached,
        });
    }
}

/// Writes `bytes` to `path` atomically (a temp file of this tool's naming in `dir`, renamed).
fn write_file(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = tempfile_in(dir)?;
    let write_error = |source| Error::io("write", path, source);
    file.write_all(bytes).map_err(write_error)?;
    file.as_file().sync_all().map_err(write_error)?;
    file.persist(path).map_err(|err| write_error(err.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use batch_request::{RequestLine, RequestSettings, Template};
    use lesson_writer::{FileNamePattern, Manifest};
    use openai_batch_client::{Client, ClientConfig, SecretString};

    use super::*;
    use crate::{JobSpec, Selection};

    fn job(dir: &Path) -> Job {
        job_with(dir, RequestSettings::default())
    }

    /// A job of three lessons with `settings` (its provider the model's).
    fn job_with(dir: &Path, settings: RequestSettings) -> Job {
        let outline = dir.join("course/outline.md");
        std::fs::create_dir_all(outline.parent().unwrap()).unwrap();
        std::fs::write(
            &outline,
            "# M0: Basics\n## L001: What Is Data? [F]\n## L002: Owners [I]\n## L003: Stewards [A]\n",
        )
        .unwrap();
        Job::open(JobSpec {
            outline,
            out_dir: dir.join("lessons"),
            work_dir: dir.join("work"),
            name: None,
            template: Template::generic(),
            settings,
            file_name: FileNamePattern::default(),
            max_enqueued_tokens: None,
            provider: None,
        })
        .unwrap()
    }

    /// A job whose model is Claude's, so its provider is Anthropic.
    fn claude_job(dir: &Path, max_completion_tokens: u32) -> Job {
        job_with(
            dir,
            RequestSettings {
                model: "claude-sonnet-4-5".to_owned(),
                max_completion_tokens,
                ..RequestSettings::default()
            },
        )
    }

    fn anthropic_client(
        emulator: &batch_emulator::Emulator,
        key: &str,
    ) -> anthropic_batch_client::Client {
        let mut config = anthropic_batch_client::ClientConfig::new(
            emulator.anthropic_base_url(),
            SecretString::from(key.to_owned()),
        );
        config.retry = anthropic_batch_client::RetryPolicy::none();
        anthropic_batch_client::Client::new(config).unwrap()
    }

    /// The names in the job's output directory.
    fn out_names(dir: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir.join("lessons"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect()
    }

    fn code(text: &str) -> LessonCode {
        text.parse().unwrap()
    }

    #[test]
    fn unknown_codes_are_all_named() {
        let dir = tempfile::tempdir().unwrap();
        let job = job(dir.path());
        let err = job
            .plan_preview(&[code("M0-L001"), code("M9-L001"), code("M0-L009")])
            .unwrap_err();
        assert!(
            matches!(&err, Error::UnknownLessons { codes, .. } if codes == &[code("M9-L001"), code("M0-L009")]),
            "{err:?}"
        );
        assert_eq!(err.kind(), crate::ErrorKind::Input);
        assert!(
            err.to_string()
                .starts_with("M9-L001, M0-L009 are not lessons of the outline "),
            "{err}"
        );
    }

    #[test]
    fn the_preview_sends_the_batch_body_priced_at_standard_prices() {
        let dir = tempfile::tempdir().unwrap();
        let job = job(dir.path());
        let preview = job
            .plan_preview(&[code("M0-L002"), code("M0-L002")])
            .unwrap();
        assert_eq!(preview.lessons().collect::<Vec<_>>(), [code("M0-L002")]);
        assert_eq!(preview.dir, dir.path().join("lessons").join(PREVIEW_DIR));

        let batch = job
            .plan(
                &Manifest::default(),
                &Selection {
                    only: [code("M0-L002")].into(),
                    ..Selection::default()
                },
                true,
            )
            .unwrap();
        let shard = std::fs::read_to_string(&batch.shards[0].shard.path).unwrap();
        let line: RequestLine = serde_json::from_str(shard.lines().next().unwrap()).unwrap();
        assert_eq!(preview.requests[0].request.body, line.body);

        let estimate = batch.estimate.unwrap();
        assert_eq!(preview.cost.requests, 1);
        assert_eq!(preview.cost.input_tokens, estimate.input_tokens);
        assert_eq!(
            preview.cost.expected_output_tokens,
            estimate.expected_output_tokens
        );
        assert_eq!(preview.cost.max_output_tokens, estimate.max_output_tokens);
        let expected = preview.cost.expected_usd.unwrap();
        assert!((expected - estimate.standard_usd.unwrap()).abs() < 1e-12);
        // Standard prices are twice the batch prices for OpenAI's models.
        assert!((preview.cost.max_usd.unwrap() - 2.0 * estimate.max_usd.unwrap()).abs() < 1e-12);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_preview_writes_cleaned_answers_into_the_preview_folder_only() {
        let dir = tempfile::tempdir().unwrap();
        let job = job(dir.path());
        let emulator = batch_emulator::Emulator::start(batch_emulator::EmulatorConfig::fast())
            .await
            .unwrap();
        let client = Client::new(ClientConfig::new(
            emulator.base_url(),
            SecretString::from("sk-test"),
        ))
        .unwrap();
        let plan = job
            .plan_preview(&[code("M0-L003"), code("M0-L001")])
            .unwrap();

        let report = job.preview(&plan, client, &()).await.unwrap();

        let codes: Vec<LessonCode> = report.lessons.iter().map(|lesson| lesson.code).collect();
        assert_eq!(codes, [code("M0-L003"), code("M0-L001")]);
        for lesson in &report.lessons {
            let PreviewOutcome::Written { path, below_spec } = &lesson.outcome else {
                panic!("{lesson:?}");
            };
            assert_eq!(below_spec, &None);
            assert_eq!(path, &plan.dir.join(format!("{}.md", lesson.code)));
            let text = std::fs::read_to_string(path).unwrap();
            assert!(
                text.starts_with(&format!("# Lesson {}: {}\n", lesson.code, lesson.title)),
                "{text}"
            );
            assert!(lesson.usage.unwrap().completion_tokens > 0);
        }
        let sum: f64 = report.lessons.iter().filter_map(|l| l.cost_usd).sum();
        assert!((report.cost_usd.unwrap() - sum).abs() < 1e-12);
        assert_eq!(
            report.usage.total_tokens,
            report.usage.prompt_tokens + report.usage.completion_tokens
        );
        assert_eq!(out_names(dir.path()), [PREVIEW_DIR]);
        assert!(!dir.path().join("work").exists());
        emulator.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_anthropic_preview_goes_through_the_messages_api_and_creates_no_batch() {
        let dir = tempfile::tempdir().unwrap();
        let job = claude_job(dir.path(), 8192);
        assert_eq!(job.provider(), Provider::Anthropic);
        let emulator = batch_emulator::Emulator::start(batch_emulator::EmulatorConfig::fast())
            .await
            .unwrap();
        let client = anthropic_client(&emulator, "sk-ant-test");
        let plan = job
            .plan_preview(&[code("M0-L002"), code("M0-L001")])
            .unwrap();
        assert_eq!(plan.model, "claude-sonnet-4-5");

        let report = job.preview(&plan, client.clone(), &()).await.unwrap();

        let codes: Vec<LessonCode> = report.lessons.iter().map(|lesson| lesson.code).collect();
        assert_eq!(codes, [code("M0-L002"), code("M0-L001")]);
        let price = job.settings().price_table().get(&plan.model).copied();
        for lesson in &report.lessons {
            let PreviewOutcome::Written { path, .. } = &lesson.outcome else {
                panic!("{lesson:?}");
            };
            assert_eq!(path, &plan.dir.join(format!("{}.md", lesson.code)));
            let text = std::fs::read_to_string(path).unwrap();
            assert!(
                text.starts_with(&format!("# Lesson {}: {}\n", lesson.code, lesson.title)),
                "{text}"
            );
            // The Message's usage, read as a chat completion's.
            let usage = lesson.usage.unwrap();
            assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
            assert_eq!(
                usage.total_tokens,
                usage.prompt_tokens + usage.completion_tokens
            );
            // Priced at the model's standard price, or not at all without one.
            assert_eq!(
                lesson.cost_usd,
                price.map(|price| price.standard_cost(
                    usage.prompt_tokens,
                    usage.cached_tokens(),
                    usage.completion_tokens
                ))
            );
        }
        assert_eq!(report.cost_usd.is_some(), price.is_some());
        assert_eq!(out_names(dir.path()), [PREVIEW_DIR]);
        assert!(!dir.path().join("work").exists());
        // No message batch (and no OpenAI batch) was created.
        use futures::TryStreamExt;
        let batches: Vec<_> = client.list_batches(None).try_collect().await.unwrap();
        assert!(batches.is_empty(), "{batches:?}");
        assert!(emulator.stats().peak_enqueued_tokens.is_empty());
        emulator.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_anthropic_refuses_is_the_lessons_failure_and_a_wrong_key_ends_the_preview() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = batch_emulator::EmulatorConfig::fast();
        config.api_key = Some("sk-ant-right".to_owned());
        let emulator = batch_emulator::Emulator::start(config).await.unwrap();

        // `max_tokens: 0` is refused by the API: each lesson fails as a batch's would.
        let job = claude_job(dir.path(), 0);
        let plan = job.plan_preview(&[code("M0-L001")]).unwrap();
        let report = job
            .preview(&plan, anthropic_client(&emulator, "sk-ant-right"), &())
            .await
            .unwrap();
        let [lesson] = &report.lessons[..] else {
            panic!("{report:?}");
        };
        let PreviewOutcome::Failed { kind, reason } = &lesson.outcome else {
            panic!("{lesson:?}");
        };
        assert_eq!(*kind, FailureKind::InvalidRequest);
        assert!(
            reason.starts_with("HTTP 400: max_tokens: Input should be greater than or equal to 1"),
            "{reason}"
        );
        assert_eq!(lesson.usage, None);
        assert_eq!(report.failed().count(), 1);
        assert_eq!(
            std::fs::read_dir(&plan.dir).unwrap().count(),
            0,
            "no file for a failed lesson"
        );

        // A key the API refuses is no lesson's fault: the preview ends with the error.
        let job = claude_job(dir.path(), 8192);
        let plan = job.plan_preview(&[code("M0-L001")]).unwrap();
        let err = job
            .preview(&plan, anthropic_client(&emulator, "sk-ant-wrong"), &())
            .await
            .unwrap_err();
        let Error::Anthropic(err) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(err.api().unwrap().status, 401);
        emulator.shutdown().await;
    }

    #[test]
    fn an_anthropic_preview_refuses_a_setting_the_messages_api_cannot_take_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        let job = job_with(
            dir.path(),
            RequestSettings {
                model: "claude-sonnet-4-5".to_owned(),
                temperature: Some(1.5),
                ..RequestSettings::default()
            },
        );
        let err = job.plan_preview(&[code("M0-L001")]).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedParameter { param, .. } if param == "temperature"),
            "{err:?}"
        );
        assert_eq!(err.kind(), crate::ErrorKind::Input);
    }
}
