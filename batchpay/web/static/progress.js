// Live progress on a batch page: polls /api/batches/{id} while a send runs, then reloads the
// page once so the outcomes, the state and the audit trail are the journal's.
(function () {
  "use strict";
  var shown = document.getElementById("progress");
  if (!shown || shown.dataset.running !== "yes") { return; }
  var batch = shown.dataset.batch;
  function poll() {
    fetch("/api/batches/" + encodeURIComponent(batch), {credentials: "same-origin"})
      .then(function (answer) { return answer.json(); })
      .then(function (data) {
        var job = data.progress;
        if (!job) { return; }
        var outcomes = Object.keys(data.outcomes).map(function (k) {
          return k + " " + data.outcomes[k];
        }).join(", ");
        shown.textContent = "Sending: " + job.done + " of " + job.rows + " rows done (" +
          outcomes + ")";
        if (job.running) { setTimeout(poll, 1000); } else { window.location.reload(); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
