% rebase('base.tpl', title=title, nav=nav, signed_in=signed_in, csrf=csrf, version=version, page_data=page_data, page='status')
<div class="page-head">
  <h1>This Manager</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<div class="tiles" id="status-tiles"></div>
<div class="two-col">
<section class="card">
  <h2>Link to the Server</h2>
  <dl class="kv-grid" id="link"></dl>
</section>
<section class="card">
  <h2>Upstream queue <span class="muted small">(what the Server has still to learn)</span></h2>
  <dl class="kv-grid" id="queue"></dl>
</section>
</div>
<div class="two-col">
<section class="card">
  <h2>Disk</h2>
  <dl class="kv-grid" id="storage"></dl>
</section>
<section class="card">
  <h2>Latest image</h2>
  <div id="latest-image"><p class="muted" id="no-image">No image was rendered yet.</p></div>
</section>
</div>
<section class="card">
  <h2>Tasks held here</h2>
  <div id="task-counts"></div>
</section>
