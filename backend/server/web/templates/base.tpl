<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{csrf}}">
<title>{{title}} · Flamenco</title>
<link rel="stylesheet" href="/static/flamenco.css?v={{version}}">
<script src="/static/flamenco.js?v={{version}}" defer></script>
</head>
<body data-page="{{page}}">
<header class="topbar">
  <a class="brand" href="/"><span class="logo" aria-hidden="true"></span>Flamenco</a>
  % if user:
  <nav>
    <a href="/" class="{{'active' if nav == 'jobs' else ''}}">Jobs</a>
    % if user.is_admin:
    <a href="/workers" class="{{'active' if nav == 'workers' else ''}}">Workers</a>
    <a href="/managers" class="{{'active' if nav == 'managers' else ''}}">Managers</a>
    % end
  </nav>
  <div class="who">
    <span id="who-name">{{user.name}}</span> <span class="role">{{user.role}}</span>
    <form method="post" action="/logout" class="inline">
      <input type="hidden" name="csrf" value="{{csrf}}">
      <button type="submit" class="link" id="sign-out">Sign out</button>
    </form>
  </div>
  % end
</header>
<main>
{{!base}}
</main>
<footer>Flamenco Server {{version}}</footer>
<script type="application/json" id="page-data">{{!page_data}}</script>
</body>
</html>
