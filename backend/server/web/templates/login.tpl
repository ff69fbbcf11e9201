% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='login')
<section class="card login">
  <h1>Sign in</h1>
  % if error:
  <p class="error" id="login-error" role="alert">{{error}}</p>
  % end
  <form method="post" action="/login">
    <input type="hidden" name="next" value="{{next_url}}">
    <input type="hidden" name="login_csrf" value="{{login_token}}">
    <label>User name
      <input name="username" id="username" value="{{username}}" autocomplete="username" required autofocus>
    </label>
    <label>Password
      <input name="password" id="password" type="password" autocomplete="current-password" required>
    </label>
    <button type="submit" class="primary" id="sign-in">Sign in</button>
  </form>
  <p class="muted small">Users without a password sign in with an API token from Blender or the CLI;
    an admin gives them one with <code>flamenco-server set-password</code>.</p>
</section>
