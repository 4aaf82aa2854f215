// keyfob console: the live remote timeline and delivery log. The pages work without this script
// (a reload shows what is new); with it, each step of a remote the server streams (Server-Sent
// Events) is added as it happens, and a callback's delivery log is refreshed every few seconds.
// Steps are written with textContent; the log is the server's own autoescaped HTML, parsed
// with DOMParser (which runs no script).
"use strict";

function addStep(list, step) {
  const item = document.createElement("li");
  item.className = String(step.type).toLowerCase();
  const what = document.createElement("span");
  what.className = "step";
  what.textContent = step.type + " · " + step.status;
  item.append(what);
  for (const extra of [step.failureCause && "(" + step.failureCause + ")", step.feedbackDetail]) {
    if (extra) {
      const cause = document.createElement("span");
      cause.className = "cause";
      cause.textContent = extra;
      item.append(" ", cause);
    }
  }
  const at = document.createElement("time");
  at.textContent = step.at;
  item.append(" ", at);
  list.append(item);
}

function followTimeline(list) {
  const status = document.getElementById("live");
  let last = Number(list.dataset.after || "0");
  const source = new EventSource(list.dataset.events + "?after=" + last);
  if (status) status.textContent = "In progress: new steps appear here as they happen.";
  source.addEventListener("step", (message) => {
    const step = JSON.parse(message.data);
    if (step.seq <= last) return;
    last = step.seq;
    addStep(list, step);
  });
  source.addEventListener("end", () => {
    source.close();
    list.dataset.finished = "true";
    if (status) status.textContent = "Finished.";
  });
}

function refreshLog(log) {
  const every = 2000;
  const again = () => setTimeout(tick, every);
  async function tick() {
    // Never pull the log away from under the keyboard focus (a Replay button, say).
    if (document.hidden || log.contains(document.activeElement)) return again();
    try {
      const answer = await fetch(log.dataset.refresh, { credentials: "same-origin" });
      if (answer.ok) {
        const page = new DOMParser().parseFromString(await answer.text(), "text/html");
        log.replaceChildren(...page.body.childNodes);
      }
    } catch (error) {
      // Offline for a moment: try again at the next tick.
    }
    again();
  }
  again();
}

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("timeline");
  if (list && list.dataset.events && !list.dataset.finished) followTimeline(list);
  const log = document.getElementById("log");
  if (log && log.dataset.refresh) refreshLog(log);
});
