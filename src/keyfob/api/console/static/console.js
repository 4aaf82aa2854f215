// keyfob console: the live remote timeline. The page works without this script (a reload shows
// new steps); with it, each step the server streams (Server-Sent Events) is added as it happens.
// Text is set with textContent only, never parsed as HTML.
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

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("timeline");
  if (list && list.dataset.events && !list.dataset.finished) followTimeline(list);
});
