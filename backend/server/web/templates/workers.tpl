% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='workers')
<div class="page-head">
  <h1>Workers</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<p class="muted small">As their Managers last reported them. An action is sent to the worker's Manager when it
  next contacts the Server; it shows as <em>requested</em> until the Manager confirms it.</p>
<p class="error" id="worker-error" role="alert" hidden></p>
<div class="table-wrap">
<table class="list" id="workers-table">
  <thead><tr><th>Worker</th><th>Manager</th><th>Status</th><th>Platform</th><th>Task types</th><th>Tags</th>
    <th>Current task</th><th>Resources</th><th>Last seen</th><th>Actions</th></tr></thead>
  <tbody id="workers-body"></tbody>
</table>
</div>
<p class="empty" id="workers-empty" hidden>No workers reported yet.</p>
<dialog id="tags-dialog">
  <form method="dialog" id="tags-form">
    <h2>Tags of <span id="tags-worker"></span></h2>
    <p class="muted small">Comma-separated. They replace the worker's own, also after it restarts.</p>
    <input id="tags-input" maxlength="2000" aria-label="tags">
    <div class="dialog-buttons"><button value="cancel" class="link">Cancel</button>
      <button value="ok" class="primary" id="tags-save">Save</button></div>
  </form>
</dialog>
<dialog id="schedule-dialog">
  <form method="dialog" id="schedule-form">
    <h2>Sleep schedule of <span id="schedule-worker"></span></h2>
    <p class="muted small">Asleep from the start to the end time on the days ticked (its Manager's local time);
      an end before the start runs past midnight.</p>
    <label><input type="checkbox" id="schedule-active"> Active</label>
    <div class="days" id="schedule-days">
      % for d in ("mo", "tu", "we", "th", "fr", "sa", "su"):
      <label><input type="checkbox" value="{{d}}"> {{d}}</label>
      % end
    </div>
    <label>From <input type="time" id="schedule-start"></label>
    <label>to <input type="time" id="schedule-end"></label>
    <div class="dialog-buttons"><button value="cancel" class="link">Cancel</button>
      <button value="ok" class="primary" id="schedule-save">Save</button></div>
  </form>
</dialog>
