// The page's words in English and Simplified Chinese. The phone's language
// picks one at first; the header's button switches and remembers it.
"use strict";

const WORDS = {
  en: {
    logout: "Sign out", nav_today: "Today", nav_receipts: "Receipts", nav_reports: "Reports",
    nav_terminals: "Terminals", nav_troubleshooting: "Troubleshooting", nav_settings: "Settings",
    login_title: "Sign in", account: "Account", password: "Password", login: "Sign in",
    setup_title: "Set the owner password",
    setup_help: "Enter the setup code shown on the hub's screen (and in its log), then choose the owner password.",
    setup_code: "Setup code", new_password: "New password (8+ characters)", setup_save: "Set password",
    today_title: "Today", by_terminal: "By terminal", by_brand: "By card brand",
    f_last4: "Card last 4", f_amount: "Amount", any_status: "Any status", any_kind: "Any kind",
    st_approved: "Approved", st_declined: "Declined", st_reversed: "Reversed", st_failed: "Failed", st_pending: "Pending",
    k_sale: "Sale", k_void: "Void", k_refund: "Refund", k_balance: "Balance",
    more_filters: "More filters", f_from: "From", f_to: "To", f_terminal: "Terminal (T1)",
    f_auth: "Auth code", f_ref: "Reference no.", search: "Search", export_csv: "Export CSV",
    load_more: "Load more", empty: "No receipts yet. Make a sale on a checkout.", back: "← Receipts",
    share_title: "E-receipt for the customer", p_day: "Day", p_week: "Week", p_month: "Month", show: "Show",
    chart_hour: "Net takings by hour", chart_day: "Net takings by day", settlements: "Settlements",
    store_freeze: "Whole store", freeze_store: "Freeze every checkout", unfreeze_store: "Let every checkout sell again",
    evidence_title: "Evidence pack (after a fraud)", download: "Download",
    run_checks: "Run checks now", checks_ok: "All is well.", checks_warn: "Something needs a look:",
    checks_fail: "Something is wrong:", fix: "What to do:",
    support_bundle: "Download the support bundle", history: "History", test_slip: "Print a test slip",
    accept_loss: "Accept the loss",
    accept_loss_confirm: "Accept that the missing records are gone? This is recorded, and sales resume.",
    new_roll: "New roll", reader_cleaned: "Reader cleaned", restart: "Restart checkout", sent: "Sent.",
    shop_title: "Shop", change_password: "Change my password", current_password: "Current password", save: "Save",
    managers: "Managers", manager_name: "Name", add_manager: "Add or reset manager", logins: "Sign-in attempts",
    backup: "Backup", download_backup: "Download the database",
    update: "Update", install_update: "Install the update", update_none: "This hub does not run from an install.",
    update_installed: "installed: the hub restarts and checks itself (about a minute); if it fails, the previous version comes back by itself.",
    sales: "Sales", refunds: "Refunds", voids: "Voids", net: "Net", declined: "Declined",
    terminal: "Terminal", brand: "Brand", count: "Count", amount: "Amount", hour: "Hour", day: "Day",
    online: "online", offline: "offline", last_seen: "last seen", version: "version", frozen: "FROZEN",
    freeze: "Freeze", unfreeze: "Unfreeze", rename: "Rename", name: "Name",
    swipes: "swipes", swipe_errors: "swipe errors", taps: "taps", tap_errors: "tap errors", cards_stuck: "stuck cards",
    printer: "printer", slips_waiting: "slips waiting", ok: "OK", none_yet: "Nothing yet.",
    no_terminals: "No terminal has connected yet.", balanced: "balanced", out_of_balance: "OUT OF BALANCE",
    batch: "Batch", when: "When", from_where: "From", result: "Result", success: "signed in", failure: "wrong password",
    remove: "Remove", freeze_reason: "Why freeze it? (shown on its screen and in the audit log)",
    saved: "Saved.", password_changed: "Password changed. Sign in again.", new_name: "New name for",
    store_name: "Store name", merchant_id: "Merchant no.", currency: "Currency", public_url: "Page address",
    hub_version: "Hub version", settings_file: "These come from the hub's settings file.",
    end_of_list: "That is all.", live: "live", sold: "sold", store_is_frozen: "The whole store is frozen:",
    not_frozen: "Every checkout may sell.", lost_session: "Signed out. Sign in again.",
    address: "Address", slip_header: "Slip header (up to 3 lines)", slip_footer: "Slip footer (up to 3 lines)",
    supervisor_pin: "Supervisor PIN for voids and refunds (4-8 digits)",
    pin_set: "A supervisor PIN is set. Leave the field empty to keep it.",
    pin_unset: "No supervisor PIN: voids and refunds are refused at the checkouts.",
    owner_only: "Only the owner can change these.",
    reprint: "Reprint", reprint_sent: "Sent to the printer.", time_zone: "Time zone",
    voided: "VOIDED", refunded: "refunded",
    alerts_title: "Fraud alerts today",
    alerts_help: "Freeze a terminal under Terminals; download the evidence pack there too.",
    a_allowed: "let through", a_blocked: "refused", a_asked_supervisor: "supervisor asked",
    cashiers: "Cashiers", by_cashier: "By cashier", cashier: "Cashier", no_cashier: "(no cashier)",
    cashier_no: "No. (1-4 digits)", cashier_name: "Name", cashier_pin: "PIN (4-8 digits)",
    add_cashier: "Add or change cashier", unlock: "Unlock", locked: "LOCKED",
    cashier_help: "Cashiers sign on at a checkout with D, 4, their number and PIN. Five wrong PINs lock them until you unlock them here.",
    cashier_sign_on: "A sale needs a cashier signed on", signed_on_at: "signed on at",
    wrong_pins: "wrong PINs", f_cashier: "Cashier no.",
    pair_title: "Pair a new checkout", pair_start: "Show a pairing code", cancel: "Cancel",
    pair_help: "A paired checkout seals everything it sends with its own key: nobody else on the shop's network can read its card data or sell in its name.",
    pair_key_it: "On the new checkout press D, 5, key this code and #:",
    pair_waiting: "Waiting for the checkout… tries left:", pair_done: "Paired:", pair_expires: "minutes left",
    pair_for: "Checkout id (shown on its NOT PAIRED screen)", pair_need_id: "Key the checkout's id first: its screen shows it after NOT PAIRED.",
    pair_others: "attempts in other checkouts' names, ignored — someone else may be trying; last:",
    pairing_required: "Only paired checkouts may sell", revoke: "Revoke key",
    managers_unfreeze: "Managers may lift a freeze (otherwise only the owner)",
    p_paired: "paired (sealed)", p_pairing: "pairing…", p_revoked: "key revoked", p_unpaired: "not paired",
  },
  "zh-CN": {
    logout: "退出", nav_today: "今日", nav_receipts: "签购单", nav_reports: "报表",
    nav_terminals: "终端", nav_troubleshooting: "故障排查", nav_settings: "设置",
    login_title: "登录", account: "账号", password: "密码", login: "登录",
    setup_title: "设置店主密码",
    setup_help: "输入主机屏幕上（及日志中）显示的设置码，然后设置店主密码。",
    setup_code: "设置码", new_password: "新密码（至少 8 位）", setup_save: "设置密码",
    today_title: "今日", by_terminal: "按终端", by_brand: "按卡组织",
    f_last4: "卡号后四位", f_amount: "金额", any_status: "全部状态", any_kind: "全部类型",
    st_approved: "成功", st_declined: "拒绝", st_reversed: "已冲正", st_failed: "失败", st_pending: "处理中",
    k_sale: "消费", k_void: "撤销", k_refund: "退货", k_balance: "查询余额",
    more_filters: "更多条件", f_from: "从", f_to: "到", f_terminal: "终端（T1）",
    f_auth: "授权码", f_ref: "参考号", search: "搜索", export_csv: "导出 CSV",
    load_more: "加载更多", empty: "还没有签购单。请在收银台做一笔交易。", back: "← 签购单",
    share_title: "给顾客的电子签购单", p_day: "日", p_week: "周", p_month: "月", show: "显示",
    chart_hour: "每小时净收入", chart_day: "每日净收入", settlements: "结算",
    store_freeze: "全店", freeze_store: "冻结所有收银台", unfreeze_store: "恢复所有收银台",
    evidence_title: "证据包（发生欺诈后）", download: "下载",
    shop_title: "商户", change_password: "修改我的密码", current_password: "当前密码", save: "保存",
    managers: "店长账号", manager_name: "名称", add_manager: "添加或重置店长", logins: "登录记录",
    backup: "备份", download_backup: "下载数据库",
    update: "更新", install_update: "安装更新", update_none: "此主机不是以安装方式运行的。",
    update_installed: "已安装：主机将重启并自检（约一分钟）；如果失败，会自动恢复到上一个版本。",
    sales: "消费", refunds: "退货", voids: "撤销", net: "净额", declined: "拒绝",
    terminal: "终端", brand: "卡组织", count: "笔数", amount: "金额", hour: "时", day: "日",
    online: "在线", offline: "离线", last_seen: "最后在线", version: "版本", frozen: "已冻结",
    freeze: "冻结", unfreeze: "解冻", rename: "改名", name: "名称",
    swipes: "刷卡", swipe_errors: "刷卡错误", taps: "挥卡", tap_errors: "挥卡错误", cards_stuck: "卡住",
    printer: "打印机", slips_waiting: "待打印", ok: "正常", none_yet: "暂无。",
    no_terminals: "还没有终端连接。", balanced: "平账", out_of_balance: "不平账",
    batch: "批次", when: "时间", from_where: "来源", result: "结果", success: "登录成功", failure: "密码错误",
    remove: "删除", freeze_reason: "冻结原因？（显示在终端屏幕和审计日志中）",
    saved: "已保存。", password_changed: "密码已修改，请重新登录。", new_name: "新名称：",
    store_name: "商户名称", merchant_id: "商户号", currency: "币种", public_url: "页面地址",
    hub_version: "主机版本", settings_file: "以上来自主机的设置文件。",
    end_of_list: "没有更多了。", live: "实时", sold: "消费", store_is_frozen: "全店已冻结：",
    not_frozen: "所有收银台均可交易。", lost_session: "已退出，请重新登录。",
    address: "地址", slip_header: "签购单抬头（最多 3 行）", slip_footer: "签购单结尾（最多 3 行）",
    supervisor_pin: "主管密码，用于撤销和退货（4-8 位数字）",
    pin_set: "已设置主管密码。留空则保持不变。",
    pin_unset: "未设置主管密码：收银台将拒绝撤销和退货。",
    owner_only: "只有店主可以修改。",
    reprint: "重打印", reprint_sent: "已发送到打印机。", time_zone: "时区",
    voided: "已撤销", refunded: "已退货",
    alerts_title: "今日欺诈警报",
    alerts_help: "可在“终端”页冻结终端，并下载证据包。",
    a_allowed: "已放行", a_blocked: "已拒绝", a_asked_supervisor: "需主管确认",
    cashiers: "收银员", by_cashier: "按收银员", cashier: "收银员", no_cashier: "（无收银员）",
    cashier_no: "编号（1-4 位数字）", cashier_name: "姓名", cashier_pin: "密码（4-8 位数字）",
    add_cashier: "添加或修改收银员", unlock: "解锁", locked: "已锁定",
    cashier_help: "收银员在收银台按 D、4，输入编号和密码签到。密码错误 5 次将被锁定，需在此处解锁。",
    cashier_sign_on: "必须有收银员签到才能消费", signed_on_at: "已签到于",
    wrong_pins: "次密码错误", f_cashier: "收银员号",
    pair_title: "配对新收银台", pair_start: "生成配对码", cancel: "取消",
    pair_help: "配对后，收银台发出的所有消息都用它自己的密钥加密：店内网络上的其他人无法读取卡数据，也无法冒充它交易。",
    pair_key_it: "在新收银台上按 D、5，输入以下配对码并按 #：",
    pair_waiting: "等待收银台…剩余次数：", pair_done: "已配对：", pair_expires: "分钟后失效",
    pair_for: "收银台编号（显示在其“未配对”屏幕上）", pair_need_id: "请先输入收银台编号：它显示在屏幕上“未配对”之后。",
    pair_others: "次以其他收银台名义的尝试已忽略——可能有人在干扰；最近一次：",
    pairing_required: "只允许已配对的收银台交易", revoke: "吊销密钥",
    managers_unfreeze: "经理也可以解除冻结（否则只有店主可以）",
    run_checks: "立即检查", checks_ok: "一切正常。", checks_warn: "有项目需要留意：",
    checks_fail: "有项目出现故障：", fix: "处理方法：",
    support_bundle: "下载支持包", history: "历史记录", test_slip: "打印测试单",
    accept_loss: "接受丢失",
    accept_loss_confirm: "确认缺失的记录已无法找回？此操作会被记录，交易随即恢复。",
    new_roll: "已换纸卷", reader_cleaned: "已清洁读卡器", restart: "重启收银台", sent: "已发送。",
    p_paired: "已配对（加密）", p_pairing: "配对中…", p_revoked: "密钥已吊销", p_unpaired: "未配对",
  },
};

function pickLang() {
  const saved = localStorage.getItem("lang");
  if (saved && WORDS[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

let LANG = pickLang();

function t(key) {
  return (WORDS[LANG] && WORDS[LANG][key]) || WORDS.en[key] || key;
}

function applyWords() {
  document.documentElement.lang = LANG;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  document.getElementById("lang").textContent = LANG === "en" ? "中文" : "English";
}

function switchLang() {
  LANG = LANG === "en" ? "zh-CN" : "en";
  localStorage.setItem("lang", LANG);
  applyWords();
}
