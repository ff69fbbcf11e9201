% rebase('base.tpl', title=title, nav=nav, signed_in=signed_in, csrf=csrf, version=version, page_data=page_data, page='workers')
<div class="page-head">
  <h1>Workers</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<p class="error" id="worker-error" role="alert" hidden></p>
<div class="table-wrap">
<table class="list" id="workers-table">
  <thead><tr><th>Worker</th><th>Status</th><th>Platform</th><th>Tags</th><th>Running tasks</th><th>Resources</th>
    <th>Sleep schedule</th><th>Blocklist</th><th>Last seen</th><th>Actions</th></tr></thead>
  <tbody id="workers-body"></tbody>
</table>
</div>
<p class="empty" id="workers-empty" hidden>No worker has registered yet.</p>
% include('worker_dialogs.tpl', where="this Manager's")
