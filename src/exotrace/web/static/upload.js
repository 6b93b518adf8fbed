// Upload page: send each chosen or dropped file to PUT /api/v1/uploads as the raw request
// body (the browser streams it from disk; the server streams it to disk), with the
// session's CSRF token as a header. One file: go to its page when done; several: list
// their links. No inline script: the page only declares data- attributes.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var input = document.getElementById("upload-file");
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("upload-status");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);
  var endpoint = form.getAttribute("data-endpoint");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function line(file) {
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.textContent = file.name + " ";
    var bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    var note = document.createElement("span");
    note.className = "upload-note";
    li.appendChild(name);
    li.appendChild(bar);
    li.appendChild(note);
    list.appendChild(li);
    return { li: li, bar: bar, note: note };
  }

  function fail(row, text) {
    row.bar.remove();
    row.note.textContent = text;
    row.note.className = "error";
    row.note.setAttribute("role", "alert");
  }

  function send(file, single) {
    return new Promise(function (resolve) {
      var row = line(file);
      if (file.size > maxBytes) {
        fail(row, file.name + ": larger than the upload limit of " + maxBytes + " bytes; nothing was sent");
        resolve(null);
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", endpoint + "?filename=" + encodeURIComponent(file.name));
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) { row.bar.value = event.loaded / event.total; }
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status === 201 && body) {
          if (single) { window.location.assign(body.page); resolve(body); return; }
          row.bar.remove();
          var a = document.createElement("a");
          a.href = body.page;
          a.textContent = body.kind + " (" + body.format + "): open";
          row.note.appendChild(a);
          resolve(body);
        } else {
          fail(row, (body && body.detail) || ("upload refused (HTTP " + xhr.status + ")"));
          resolve(null);
        }
      });
      xhr.addEventListener("error", function () {
        fail(row, file.name + ": the connection was closed during the upload; nothing was kept");
        resolve(null);
      });
      xhr.send(file);
    });
  }

  function sendAll(files) {
    var chosen = Array.prototype.slice.call(files);
    if (!chosen.length) { return; }
    var single = chosen.length === 1;
    // One after the other: several large videos at once would only share the link.
    chosen.reduce(function (done, file) {
      return done.then(function () { return send(file, single); });
    }, Promise.resolve());
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    sendAll(input.files);
  });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer) { sendAll(event.dataTransfer.files); }
  });
})();
