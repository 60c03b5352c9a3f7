//! The OpenAI-compatible `POST /v1/chat/completions` (vLLM `serving_chat.py`, SGLang's OpenAI
//! API), for a planner that is a general chat or reasoning model: the server applies the
//! model's chat template to `messages`, and each choice's text is `message.content` (a
//! reasoning parser, where the server runs one, moves the thinking to `reasoning_content`).
//! No log-probs are asked for. One request carries one conversation, so a client of this wire
//! sends one prompt per request (the planner does).

use serde::Serialize;
use serde_json::{json, Value};

use super::http_policy::{HttpPolicy, Request, SamplingSettings, WireFormat};
use super::openai::{parse_completions_response, OpenAiCompletions};
use super::Completion;
use crate::bos::PromptToken;

/// The OpenAI chat-completions API.
pub struct OpenAiChat;

/// A client of an OpenAI-compatible `/v1/chat/completions`.
pub type OpenAiChatClient = HttpPolicy<OpenAiChat>;

impl WireFormat for OpenAiChat {
    const PATH: &'static str = "/v1/chat/completions";
    const NAMES_MODEL: bool = true;
    const STOP_REGEX: bool = false;
    const TOKENIZE_PATH: &'static str = "/tokenize";

    /// vLLM's chat form of `/tokenize` (`protocol.py` `TokenizeChatRequest`): the messages
    /// with the generation prompt added, as a chat request renders them.
    fn tokenize_body<'a>(
        prompt: &'a str,
        model: Option<&'a str>,
    ) -> impl Serialize + Send + Sync + 'a {
        json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "add_generation_prompt": true,
            "return_token_strs": true,
        })
    }

    fn parse_tokens(answer: Value) -> Result<Vec<PromptToken>, String> {
        OpenAiCompletions::parse_tokens(answer)
    }

    fn body<'a>(request: &'a Request<'a>) -> impl Serialize + Send + Sync + 'a {
        let settings = request.settings;
        let content = request.texts.first().copied().unwrap_or_default();
        let mut body = json!({
            "model": request.model.unwrap_or_default(),
            "messages": [{"role": "user", "content": content}],
            "n": request.samples_per_text,
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
        });
        if !settings.stop.is_empty() {
            body["stop"] = json!(settings.stop);
        }
        body
    }

    fn parse(
        answer: Value,
        expected: usize,
        _settings: &SamplingSettings,
    ) -> Result<Vec<Completion>, String> {
        parse_completions_response(&answer, expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Sampling;

    #[test]
    fn a_chat_request_is_one_user_message_and_its_choices_are_message_contents() {
        let settings = SamplingSettings {
            sampling: Sampling::N,
            temperature: 0.6,
            top_p: 0.95,
            max_new_tokens: 8192,
            stop: Vec::new(),
            stop_regex: Vec::new(),
        };
        let request = Request {
            model: Some("qwq"),
            texts: vec!["Prove it."],
            samples_per_text: 2,
            settings: &settings,
        };
        let body = serde_json::to_value(OpenAiChat::body(&request)).unwrap();
        assert_eq!(
            body,
            json!({"model": "qwq", "messages": [{"role": "user", "content": "Prove it."}],
                   "n": 2, "max_tokens": 8192, "temperature": 0.6, "top_p": 0.95})
        );
        // vLLM's answer shape (`ChatCompletionResponse`): choices by index, usage shared out.
        let answer = json!({
            "choices": [
                {"index": 1, "message": {"role": "assistant", "content": "b"}, "finish_reason": "stop"},
                {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "length"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 7}
        });
        let completions = OpenAiChat::parse(answer, 2, &settings).unwrap();
        let texts: Vec<&str> = completions.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["a", "b"]);
        assert_eq!(
            completions[0].completion_tokens + completions[1].completion_tokens,
            7
        );
        assert_eq!(completions[0].prompt_tokens, 5);
        assert!(completions[0].tokens.is_empty());
    }
}
