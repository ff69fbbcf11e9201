% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='workers')
<div class="page-head">
  <h1>Workers</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<p class="muted small">As their Managers last reported them; the tasks they run as the task updates tell, within a
  second. An action is sent to the worker's Manager when it
  next contacts the Server; it shows as <em>requested</em> until the Manager confirms it.</p>
<p class="error" id="worker-error" role="alert" hidden></p>
<div class="table-wrap">
<table class="list" id="workers-table">
  <thead><tr><th>Worker</th><th>Manager</th><th>Status</th><th>Platform</th><th>Task types</th><th>Tags</th>
    <th>Running tasks</th><th>Resources</th><th>Last seen</th><th>Actions</th></tr></thead>
  <tbody id="workers-body"></tbody>
</table>
</div>
<p class="empty" id="workers-empty" hidden>No workers reported yet.</p>
% include('worker_dialogs.tpl', where="its Manager's")
