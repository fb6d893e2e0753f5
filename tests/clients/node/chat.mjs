// One chat completion through the official `openai` npm client; prints one JSON object on stdout.
//
//   node chat.mjs BASE_URL API_KEY [MODEL] [MODE] [PROMPT]
//
// Each argument may come from the environment instead: PLATFORM_BASE_URL (the server's root or
// its /v1), PLATFORM_API_KEY, PLATFORM_MODEL (default research_agent), PLATFORM_MODE, PLATFORM_PROMPT.
// MODE: "stream" (iterate the SSE chunks, accumulate the deltas, stream_options.include_usage),
// "nostream" (one chat.completion; also sends temperature and max_tokens), or "helper" (the SDK's
// own accumulator: chat.completions.stream() → finalChatCompletion()).
// Output: {"ok": true, "mode", "content", "model", "session_header", "finish_reason", ...};
// on an API error {"ok": false, "status", "error"} and exit code 2.
import OpenAI from "openai";

const [argBase, argKey, argModel, argMode, argPrompt] = process.argv.slice(2);
const env = process.env;
let baseURL = argBase ?? env.PLATFORM_BASE_URL;
const apiKey = argKey ?? env.PLATFORM_API_KEY;
const model = argModel ?? env.PLATFORM_MODEL ?? "research_agent";
const mode = (argMode ?? env.PLATFORM_MODE ?? "stream").toLowerCase();
const prompt = argPrompt ?? env.PLATFORM_PROMPT ?? "Capital of France?";

if (!baseURL || !apiKey || !["stream", "nostream", "helper"].includes(mode)) {
  console.error("usage: node chat.mjs BASE_URL API_KEY [MODEL] [stream|nostream|helper] [PROMPT]");
  process.exit(64);
}
baseURL = baseURL.replace(/\/+$/, "");
if (!baseURL.endsWith("/v1")) baseURL += "/v1";

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const messages = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: prompt },
];

async function nonStream() {
  const { data, response } = await client.chat.completions
    .create({ model, messages, temperature: 0.2, max_tokens: 256 })
    .withResponse();
  const choice = data.choices[0];
  return {
    object: data.object, content: choice.message.content, role: choice.message.role, model: data.model,
    finish_reason: choice.finish_reason, usage: data.usage ?? null, session_header: response.headers.get("x-session-id"),
  };
}

async function stream() {
  const { data: chunks, response } = await client.chat.completions
    .create({ model, messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  let content = "";
  let finishReason = null;
  let finalDelta = null;
  let usage = null;
  const models = new Set();
  const chunkIds = [];
  const toolCalls = [];
  for await (const chunk of chunks) {
    chunkIds.push(chunk.id);
    models.add(chunk.model);
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      const delta = choice.delta ?? {};
      if (typeof delta.content === "string") content += delta.content; // what any client does
      for (const call of delta.tool_calls ?? []) toolCalls.push(call.function?.name);
      if (choice.finish_reason) {
        finishReason = choice.finish_reason;
        finalDelta = delta.content ?? null;
      }
    }
  }
  return {
    content, final_chunk_content: finalDelta, model: [...models].join(","), finish_reason: finishReason,
    usage, chunk_ids: chunkIds, tool_calls: toolCalls, session_header: response.headers.get("x-session-id"),
  };
}

async function helper() {
  const runner = client.chat.completions.stream({ model, messages });
  const completion = await runner.finalChatCompletion();
  const choice = completion.choices[0];
  return {
    content: choice.message.content, role: choice.message.role, model: completion.model,
    finish_reason: choice.finish_reason, session_header: null,
  };
}

try {
  const result = await { stream, nostream: nonStream, helper }[mode]();
  console.log(JSON.stringify({ ok: true, mode, ...result }));
} catch (err) {
  if (err instanceof OpenAI.APIError) {
    console.log(JSON.stringify({ ok: false, mode, status: err.status ?? null, error: err.error ?? null }));
    process.exit(2);
  }
  throw err;
}
