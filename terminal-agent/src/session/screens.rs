//! The OLED's screens as text, in Chinese or English: every screen a cashier
//! can meet is built here, so their wording is in one place. English screens
//! have up to six lines of 21 columns (6×10 font on 128×64); Chinese ones up
//! to five (12 px font), a Chinese character taking two columns.

use serde::{Deserialize, Serialize};

use crate::devices::PrinterProblem;
use tallybox_core::code::{ReasonCode, ResponseCode};
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{Cashier, DrawerCount, Provider};
use tallybox_core::reason::{explain, Explanation};
use tallybox_core::slip::columns;

pub const COLUMNS: usize = 21;
pub const ROWS: usize = 6;
/// Text columns left beside a QR code.
pub const QR_COLUMNS: usize = 10;

/// The language of the checkout's screens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Lang {
    #[default]
    #[serde(rename = "en")]
    #[value(name = "en")]
    En,
    #[serde(rename = "zh-CN")]
    #[value(name = "zh-CN", alias = "zh")]
    Zh,
}

pub use crate::devices::display::{Screen, StatusBar};

/// What the menu's self-test shows.
#[derive(Debug, Clone, Default)]
pub struct SelfTest {
    /// Signed in with the hub.
    pub online: bool,
    pub paired: bool,
    pub printer: Option<crate::devices::PrinterProblem>,
    pub paper_low: bool,
    /// The readers' counts since the checkout started.
    pub devices: tallybox_core::protocol::DeviceHealth,
}

/// Keeps the first `width` columns of `line`.
fn clip(line: &str, width: usize) -> String {
    let mut used = 0;
    line.chars()
        .take_while(|c| {
            used += columns(c.encode_utf8(&mut [0; 4]));
            used <= width
        })
        .collect()
}

impl Screen {
    fn of(lines: &[&str]) -> Screen {
        Screen {
            lines: lines.iter().take(ROWS).map(|l| clip(l, COLUMNS)).collect(),
            qr: None,
            status: None,
        }
    }

    /// Lines beside a QR code of `data`.
    fn with_qr(lines: &[&str], data: &str) -> Screen {
        Screen {
            lines: lines.iter().take(ROWS).map(|l| clip(l, QR_COLUMNS)).collect(),
            qr: Some(data.to_string()),
            status: None,
        }
    }
}

/// The screens in one language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Screens {
    pub lang: Lang,
}

/// Digits keyed in minor units, shown as money: `1250` → `CNY 12.50`, `JPY 1250`.
fn keyed_money(currency: Currency, digits: &str) -> String {
    let minor: u64 = digits.parse().unwrap_or(0);
    Amount::from_minor(minor)
        .map(|a| currency.show(a))
        .unwrap_or_default()
}

impl Screens {
    /// `en` or `zh`, by the screens' language.
    pub fn pick<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self.lang {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    fn reason(self, x: &Explanation) -> (&'static str, &'static str) {
        match self.lang {
            Lang::En => (x.reason_en, x.hint_en),
            Lang::Zh => (x.reason_zh, x.hint_zh),
        }
    }

    fn any_key(self) -> &'static str {
        self.pick("Any key: next", "按任意键继续")
    }

    fn edit_keys(self) -> &'static str {
        self.pick("# OK * del C cancel", "#确认 *删除 C取消")
    }

    /// Idle, ready for a sale; `cashier` is the number of the cashier signed on.
    pub fn idle(
        self,
        store_name: &str,
        status: &StatusBar,
        printer: Option<PrinterProblem>,
        cashier: Option<&str>,
    ) -> Screen {
        let link = match (status.online, cashier) {
            (true, Some(no)) => format!("{}{no}", self.pick("Ready  Cashier ", "可以交易 收银员")),
            (true, None) => self.pick("Ready", "可以交易").to_string(),
            (false, _) => self.pick("Connecting to hub...", "正在连接主机...").to_string(),
        };
        let printer = match (printer, status.paper_low) {
            (Some(p), _) => self.pick(p.short().0, p.short().1),
            (None, true) => self.pick("Paper running low", "纸将用完"),
            (None, false) => "",
        };
        let mut screen = Screen::of(&[
            store_name,
            &link,
            printer,
            self.pick("A sale    D menu", "A 消费  D 菜单"),
        ]);
        screen.status = Some(status.clone());
        screen
    }

    /// Idle while the hub has no owner password: the code its web page asks for.
    pub fn idle_setup(self, store_name: &str, status: &StatusBar, code: &str) -> Screen {
        self.idle_notice(store_name, status, ("Owner setup code:", "店主设置码:"), code)
    }

    /// Idle after a fraud rule fired: where, and which rule (the web page
    /// has the details).
    pub fn idle_alert(self, store_name: &str, status: &StatusBar, alert: &str) -> Screen {
        self.idle_notice(store_name, status, ("FRAUD ALERT", "欺诈警报"), alert)
    }

    fn idle_notice(self, store_name: &str, status: &StatusBar, title: (&str, &str), text: &str) -> Screen {
        let mut screen = Screen::of(&[
            store_name,
            self.pick(title.0, title.1),
            text,
            self.pick("A sale    D menu", "A 消费  D 菜单"),
        ]);
        screen.status = Some(status.clone());
        screen
    }

    /// A sale's title, e.g. `SALE CNY 12.50`.
    pub fn sale_title(self, currency: Currency, amount: Amount) -> String {
        format!("{} {}", self.pick("SALE", "消费"), currency.show(amount))
    }

    pub fn balance_title(self) -> String {
        self.pick("BALANCE INQUIRY", "余额查询").to_string()
    }

    pub fn void_title(self, trace: u32) -> String {
        format!("{} {trace:06}", self.pick("VOID TRACE", "撤销 凭证号"))
    }

    pub fn refund_title(self, currency: Currency, amount: Amount) -> String {
        format!("{} {}", self.pick("REFUND", "退货"), currency.show(amount))
    }

    /// The supervisor's menu (key `B`).
    pub fn admin_menu(self) -> Screen {
        match self.lang {
            Lang::En => Screen::of(&[
                "SUPERVISOR",
                "1 Void  2 Refund",
                "3 Freeze checkout",
                "4 No sale (drawer)",
                "5 Count drawer",
                "C back",
            ]),
            // Five rows of Chinese: two choices share a row.
            Lang::Zh => Screen::of(&[
                "主管操作",
                "1 撤销  2 退货",
                "3 冻结本终端",
                "4 开钱箱 5 交班点钞",
                "C 返回",
            ]),
        }
    }

    /// A number being keyed in: title, what to key, what is keyed so far.
    fn entry(self, title: &str, prompt: &str, value: &str) -> Screen {
        Screen::of(&[title, prompt, value, "", self.edit_keys()])
    }

    /// The supervisor's step `title` (VOID, REFUND, FREEZE): their PIN.
    pub fn supervisor_pin(self, title: &str, typed: usize) -> Screen {
        let prompt = self.pick("Supervisor PIN:", "主管密码:");
        self.entry(title, prompt, &"*".repeat(typed))
    }

    pub fn trace_entry(self, title: &str, digits: &str) -> Screen {
        let prompt = self.pick("Trace no. of sale:", "原交易凭证号:");
        self.entry(title, prompt, digits)
    }

    pub fn refund_amount(self, currency: Currency, trace: u32, digits: &str) -> Screen {
        let title = format!("{} {trace:06}", self.pick("REFUND TRACE", "退货 凭证号"));
        let prompt = self.pick("Refund amount:", "退货金额:");
        self.entry(&title, prompt, &keyed_money(currency, digits))
    }

    pub fn settle_title(self) -> String {
        self.pick("SETTLEMENT", "结算").to_string()
    }

    /// The batch is settled: balanced, or not (the report says by how much).
    pub fn settled(self, batch_no: u32, balanced: bool) -> Screen {
        let batch = format!("{} {batch_no:06}", self.pick("Batch", "批次号"));
        if balanced {
            Screen::of(&[
                self.pick("SETTLED", "结算完成"),
                &batch,
                self.pick("Totals agree", "对账平"),
                self.pick("Report printed", "已打印结算单"),
                self.any_key(),
            ])
        } else {
            Screen::of(&[
                self.pick("OUT OF BALANCE", "对账不平"),
                &batch,
                self.pick("Call the acquirer", "请联系收单机构"),
                self.pick("See the report", "见结算单"),
                self.any_key(),
            ])
        }
    }

    pub fn reprint_title(self) -> String {
        self.pick("REPRINT", "重打印").to_string()
    }

    pub fn amount_entry(self, currency: Currency, digits: &str) -> Screen {
        let prompt = self.pick("Key amount:", "请输入金额:");
        self.entry(self.pick("SALE", "消费"), prompt, &keyed_money(currency, digits))
    }

    pub fn menu(self) -> Screen {
        match self.lang {
            Lang::En => Screen::of(&[
                "MENU",
                "1 Balance inquiry",
                "2 Reprint  3 Settle",
                "4 Cashier sign-on",
                "5 Pair  6 Self-test",
                "C back",
            ]),
            // Five rows of Chinese: two choices share a row.
            Lang::Zh => Screen::of(&[
                "菜单",
                "1 余额查询 2 重打印",
                "3 结算  4 收银员签到",
                "5 配对主机  6 自检",
                "C 返回",
            ]),
        }
    }

    /// The menu's self-test: the hub link, the printer, the readers' counts,
    /// and that a test slip went to the printer.
    pub fn self_test(self, t: &SelfTest) -> Screen {
        let hub = match (t.online, t.paired) {
            (false, _) => self.pick("Hub: NO ANSWER", "主机:无应答"),
            (true, true) => self.pick("Hub: OK, paired", "主机:正常 已配对"),
            (true, false) => self.pick("Hub: OK, not paired", "主机:正常 未配对"),
        };
        let printer = match (t.printer, t.paper_low) {
            (Some(p), _) => format!(
                "{}{}",
                self.pick("Printer: ", "打印机:"),
                self.pick(p.short().0, p.short().1)
            ),
            (None, true) => self.pick("Printer: paper low", "打印机:纸将用完").to_string(),
            (None, false) => self.pick("Printer: OK", "打印机:正常").to_string(),
        };
        let d = &t.devices;
        match self.lang {
            Lang::En => Screen::of(&[
                "SELF-TEST",
                hub,
                &printer,
                &format!("Swipes {} bad {}", d.swipes, d.swipe_errors),
                &format!("Taps {} bad {}", d.taps, d.tap_errors),
                "Test slip sent. C",
            ]),
            Lang::Zh => Screen::of(&[
                "自检",
                hub,
                &printer,
                &format!(
                    "刷{}错{} 挥{}错{}",
                    d.swipes, d.swipe_errors, d.taps, d.tap_errors
                ),
                "已打印测试单 C返回",
            ]),
        }
    }

    /// Idle while the hub refuses this terminal until it is paired: its id,
    /// which the owner names when opening a pairing code.
    pub fn not_paired(self, store_name: &str, terminal: &str) -> Screen {
        Screen::of(&[
            store_name,
            &format!("{} {terminal}", self.pick("NOT PAIRED", "未配对")),
            self.pick("Owner: Terminals,", "店主在手机上为"),
            self.pick("code for this id;", "此编号生成配对码"),
            self.pick("then D 5 and code", "按 D 5 输入"),
        ])
    }

    /// The hub no longer holds this checkout's key while a sale waited: what
    /// became of the sale is not known here (it may have been charged
    /// before the key was revoked); pairing again and a reprint tell.
    pub fn not_paired_mid_sale(self) -> Screen {
        Screen::of(&[
            self.pick("NOT PAIRED", "未配对"),
            self.pick("Sale unconfirmed", "交易结果未确认"),
            self.pick("Pair again: D 5,", "按 D 5 重新配对"),
            self.pick("then D 2 to check", "再按 D 2 查询"),
        ])
    }

    pub fn pair_title(self) -> String {
        self.pick("PAIR WITH HUB", "配对主机").to_string()
    }

    pub fn pair_code_entry(self, digits: &str) -> Screen {
        self.entry(&self.pair_title(), self.pick("Pairing code:", "配对码:"), digits)
    }

    /// The outcome of a pairing: `Ok` or why not.
    pub fn paired(self, outcome: &Result<(), String>) -> Screen {
        match outcome {
            Ok(()) => Screen::of(&[
                self.pick("PAIRED", "配对成功"),
                self.pick("Messages are sealed", "通信已加密"),
                "",
                self.any_key(),
            ]),
            Err(why) => Screen::of(&[
                self.pick("PAIRING FAILED", "配对失败"),
                why,
                self.pick("Ask for a new code", "请店主重新生成配对码"),
                self.any_key(),
            ]),
        }
    }

    /// Menu 4 while a cashier is signed on.
    pub fn cashier_menu(self, cashier: &Cashier) -> Screen {
        Screen::of(&[
            self.pick("CASHIER", "收银员"),
            &format!("{} {}", cashier.no, cashier.name),
            self.pick("1 Sign on another", "1 其他收银员签到"),
            self.pick("2 Sign off", "2 签退"),
            self.pick("C back", "C 返回"),
        ])
    }

    pub fn sign_on_title(self) -> String {
        self.pick("CASHIER SIGN-ON", "收银员签到").to_string()
    }

    pub fn cashier_no_entry(self, digits: &str) -> Screen {
        self.entry(
            &self.sign_on_title(),
            self.pick("Cashier no.:", "收银员号:"),
            digits,
        )
    }

    pub fn cashier_pin_entry(self, no: &str, typed: usize) -> Screen {
        let prompt = format!(
            "{} {no} {}",
            self.pick("Cashier", "收银员"),
            self.pick("PIN:", "密码:")
        );
        self.entry(&self.sign_on_title(), &prompt, &"*".repeat(typed))
    }

    /// After a sign-on (`Some`) or a sign-off (`None`).
    pub fn signed_on(self, cashier: Option<&Cashier>) -> Screen {
        match cashier {
            Some(c) => Screen::of(&[
                self.pick("SIGNED ON", "签到成功"),
                &format!("{} {}", c.no, c.name),
                "",
                self.any_key(),
            ]),
            None => Screen::of(&[
                self.pick("SIGNED OFF", "已签退"),
                self.pick("No cashier signed on", "当前无收银员"),
                "",
                self.any_key(),
            ]),
        }
    }

    /// A sign-on the hub refused: wrong number or PIN (a locked cashier
    /// gets [`Screens::locked`]).
    pub fn sign_on_refused(self, code: ReasonCode) -> Screen {
        let x = explain(code);
        let (reason, hint) = self.reason(&x);
        Screen::of(&[
            self.pick("SIGN-ON FAILED", "签到失败"),
            reason,
            hint,
            self.any_key(),
        ])
    }

    /// The hub refused to open or count the drawer (a wrong supervisor PIN).
    pub fn drawer_refused(self, code: ReasonCode) -> Screen {
        let x = explain(code);
        let (reason, hint) = self.reason(&x);
        Screen::of(&[
            self.pick("DRAWER: NOT DONE", "钱箱操作未完成"),
            reason,
            hint,
            self.any_key(),
        ])
    }

    /// The drawer opened without a sale (recorded at the hub).
    pub fn no_sale_done(self) -> Screen {
        Screen::of(&[
            self.pick("NO SALE", "开钱箱"),
            self.pick("Drawer open", "钱箱已打开"),
            self.pick("Recorded at the hub", "已记录"),
            "",
            self.any_key(),
        ])
    }

    /// A shift's drawer count: what it should hold, and over or short.
    pub fn drawer_counted(self, currency: Currency, count: &DrawerCount) -> Screen {
        let difference = count.difference();
        let verdict = match difference {
            0 => self.pick("Drawer balances", "钱箱相符").to_string(),
            d if d > 0 => format!(
                "{} {}",
                self.pick("Over", "长款"),
                currency.format_minor(d as u64)
            ),
            d => format!(
                "{} {}",
                self.pick("Short", "短款"),
                currency.format_minor(d.unsigned_abs())
            ),
        };
        Screen::of(&[
            self.pick("DRAWER COUNTED", "交班点钞完成"),
            &format!(
                "{} {}",
                self.pick("Expect", "应有"),
                currency.format(count.expected)
            ),
            &format!(
                "{} {}",
                self.pick("Count", "实点"),
                currency.format(count.counted)
            ),
            &verdict,
            self.any_key(),
        ])
    }

    /// The supervisor keys the cash counted in the drawer, less the float
    /// the shop keeps in it.
    pub fn count_entry(self, currency: Currency, digits: &str) -> Screen {
        let prompt = self.pick("Takings, no float:", "收入(不含备用金):");
        self.entry(
            self.pick("COUNT DRAWER", "交班点钞"),
            prompt,
            &keyed_money(currency, digits),
        )
    }

    pub fn present_card(self, title: &str, notice: Option<Explanation>) -> Screen {
        let swipe = self.pick("Swipe or tap card", "请刷卡或挥卡");
        let cancel = self.pick("C cancel", "C 取消");
        match notice {
            Some(x) => {
                let (reason, hint) = self.reason(&x);
                Screen::of(&[title, reason, hint, swipe, cancel])
            }
            None => Screen::of(&[title, swipe, "", "", cancel]),
        }
    }

    /// A sale waiting for its tender: a card, a scanned payment code (`D`
    /// to key one), or `B` for cash.
    pub fn pay(self, title: &str, notice: Option<Explanation>) -> Screen {
        let mut screen = self.present_card(title, notice);
        let (row, text) = match notice {
            None => (2, self.pick("Scan, D code, B cash", "扫码 D输码 B现金")),
            Some(_) => (3, self.pick("Card/code or B cash", "刷卡扫码或 B 现金")),
        };
        screen.lines[row] = text.to_string();
        screen
    }

    /// A payment code keyed by hand (the scanner cannot read it).
    pub fn code_entry(self, currency: Currency, amount: Amount, digits: &str) -> Screen {
        let title = format!("{} {}", self.pick("CODE", "付款码"), currency.show(amount));
        // The code is longer than a line: its end is what is being keyed.
        let shown = &digits[digits.len().saturating_sub(COLUMNS)..];
        Screen::of(&[
            &title,
            self.pick("Key the payment code", "输入顾客付款码"),
            shown,
            "",
            self.edit_keys(),
        ])
    }

    /// A code sale the buyer is confirming in their app, with the seconds
    /// the hub still waits.
    pub fn code_confirming(self, title: &str, seconds_left: u32) -> Screen {
        Screen::of(&[
            title,
            self.pick("Customer confirming", "顾客正在确认付款"),
            &match self.lang {
                Lang::Zh => format!("剩余 {seconds_left} 秒"),
                _ => format!("in the app: {seconds_left} s"),
            },
            "",
            self.pick("C cancel", "C 取消"),
        ])
    }

    /// The cashier stopped a code sale: the hub is closing the order.
    pub fn code_cancelling(self, title: &str) -> Screen {
        Screen::of(&[
            title,
            self.pick("Cancelling...", "正在撤销..."),
            self.pick("Wait for the answer", "请等待结果"),
            "",
            self.pick("C again: stop waiting", "再按 C 停止等待"),
        ])
    }

    /// A code sale paid: the provider took the money.
    pub fn code_paid(self, currency: Currency, amount: Amount, provider: Provider) -> Screen {
        let name = match (self.lang, provider) {
            (Lang::Zh, Provider::Alipay) => "支付宝",
            (Lang::Zh, Provider::WechatPay) => "微信支付",
            (Lang::Zh, Provider::UnionPay) => "银联二维码",
            (_, Provider::Alipay) => "Alipay",
            (_, Provider::WechatPay) => "WeChat Pay",
            (_, Provider::UnionPay) => "UnionPay QR",
        };
        Screen::of(&[
            self.pick("PAID", "付款成功"),
            &currency.show(amount),
            name,
            self.pick("Printing receipt", "正在打印小票"),
            self.any_key(),
        ])
    }

    /// A code sale refunded or voided: the money goes back to the wallet.
    pub fn code_back(self, currency: Currency, amount: Amount) -> Screen {
        Screen::of(&[
            self.pick("REFUNDED", "退款成功"),
            &currency.show(amount),
            self.pick("Back to the wallet", "原路退回付款账户"),
            self.pick("Printing receipt", "正在打印小票"),
            self.any_key(),
        ])
    }

    /// What the customer hands over for a cash sale of `amount`; `short`
    /// when the keyed sum was less than the amount (`A` takes it as a part).
    pub fn cash_entry(self, currency: Currency, amount: Amount, digits: &str, short: bool) -> Screen {
        let title = format!("{} {}", self.pick("CASH", "现金"), currency.show(amount));
        let prompt = match short {
            false => self.pick("Received (#=exact):", "实收(#=金额):"),
            true => self.pick("Less than the amount!", "少于应收金额!"),
        };
        Screen::of(&[
            &title,
            prompt,
            &keyed_money(currency, digits),
            self.pick("A: pay part in cash", "A 部分付现金"),
            self.edit_keys(),
        ])
    }

    /// A cash sale recorded: the change to give, the drawer open.
    pub fn cash_paid(self, currency: Currency, change: Amount) -> Screen {
        Screen::of(&[
            self.pick("PAID IN CASH", "现金收款成功"),
            self.pick("Change:", "找零:"),
            &currency.show(change),
            self.pick("Drawer open", "钱箱已打开"),
            self.any_key(),
        ])
    }

    /// A cash sale voided or refunded: the cash to hand back, the drawer open.
    pub fn cash_back(self, currency: Currency, amount: Amount) -> Screen {
        Screen::of(&[
            self.pick("CASH BACK", "退还现金"),
            self.pick("Give back:", "应退:"),
            &currency.show(amount),
            self.pick("Drawer open", "钱箱已打开"),
            self.any_key(),
        ])
    }

    /// A part of a split sale paid: what is paid and what is still owed.
    pub fn split_owed(self, currency: Currency, paid: Amount, owed: Amount) -> Screen {
        Screen::of(&[
            &format!("{} {}", self.pick("PAID", "已付"), currency.show(paid)),
            self.pick("Still owed:", "还需支付:"),
            &currency.show(owed),
            self.pick("Card or B cash", "刷卡或 B 现金"),
            self.pick("C stop", "C 停止"),
        ])
    }

    /// A split sale paid in full: its total and the change of the last cash.
    pub fn split_paid(self, currency: Currency, total: Amount, change: Amount) -> Screen {
        Screen::of(&[
            self.pick("PAID IN FULL", "已全额支付"),
            &currency.show(total),
            &format!("{} {}", self.pick("Change", "找零"), currency.format(change)),
            self.pick("Printing receipt", "正在打印小票"),
            self.any_key(),
        ])
    }

    /// A later part of a split sale was not paid (`code`), or the cashier
    /// stopped: pay the rest another way, or undo what was paid.
    pub fn split_not_paid(self, currency: Currency, code: Option<ResponseCode>, owed: Amount) -> Screen {
        let why = match code {
            Some(code) => self.reason(&explain(code)).0,
            None => self.pick("Stopped", "已停止"),
        };
        Screen::of(&[
            self.pick("NOT PAID", "未支付"),
            why,
            &format!("{} {}", self.pick("Owed", "还需"), currency.format(owed)),
            self.pick("1 pay another way", "1 换方式支付"),
            self.pick("2 undo paid part", "2 撤销已付部分"),
        ])
    }

    /// The hub would not undo a part of a split sale: the supervisor can.
    pub fn split_undo_refused(self, code: ResponseCode) -> Screen {
        let (reason, _) = self.reason(&explain(code));
        Screen::of(&[
            self.pick("UNDO NOT DONE", "撤销未完成"),
            reason,
            self.pick("Supervisor: B 1", "请主管 B 1 撤销"),
            self.any_key(),
        ])
    }

    /// The drawer was to open for a cash sale and did not.
    pub fn drawer_shut(self, problem: PrinterProblem) -> Screen {
        Screen::of(&[
            self.pick("DRAWER NOT OPENED", "钱箱未打开"),
            self.pick(problem.short().0, problem.short().1),
            self.pick("Sale is recorded", "交易已记录"),
            self.pick("Open it with its key", "请用钥匙打开"),
            self.any_key(),
        ])
    }

    pub fn pin_entry(self, title: &str, typed: usize) -> Screen {
        self.entry(title, self.pick("Enter PIN:", "请输入密码:"), &"*".repeat(typed))
    }

    pub fn processing(self, title: &str) -> Screen {
        Screen::of(&[
            self.pick("Processing...", "处理中..."),
            title,
            "",
            self.pick("Do not remove card", "请勿移走卡片"),
        ])
    }

    /// Two screens that differ almost everywhere, so showing one after the
    /// other sends nearly the whole 1 KiB frame: the display's worst case,
    /// which the benchmarks time.
    pub fn busiest_pair(self) -> [Screen; 2] {
        [
            self.approved(
                Currency::CNY,
                Amount::from_minor(123_456).unwrap_or(Amount::ZERO),
                "123456",
            ),
            self.printer_problem(
                PrinterProblem::PaperOut,
                Some("http://tallybox.local/r/ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            ),
        ]
    }

    pub fn approved(self, currency: Currency, amount: Amount, auth_code: &str) -> Screen {
        Screen::of(&[
            self.pick("APPROVED", "交易成功"),
            &currency.show(amount),
            &format!("{} {auth_code}", self.pick("Auth", "授权码")),
            self.pick("Printing slips", "正在打印签购单"),
            self.any_key(),
        ])
    }

    pub fn balance(self, currency: Currency, balance: Amount) -> Screen {
        Screen::of(&[
            self.pick("BALANCE", "余额"),
            &currency.show(balance),
            "",
            self.any_key(),
        ])
    }

    /// A decline or failure: the reason and what to do, from the response code.
    pub fn declined(self, code: ResponseCode, not_charged: bool) -> Screen {
        let x = explain(code);
        let (reason, hint) = self.reason(&x);
        let title = if not_charged {
            self.pick("NOT CHARGED", "未扣款")
        } else {
            self.pick("DECLINED", "交易失败")
        };
        Screen::of(&[
            title,
            reason,
            hint,
            &format!("{} {code}", self.pick("Code", "代码")),
            self.any_key(),
        ])
    }

    pub fn hub_silent(self) -> Screen {
        let (reason, hint) = self.reason(&explain(tallybox_core::reason::HUB_SILENT));
        Screen::of(&[
            self.pick("NO ANSWER YET", "主机无应答"),
            reason,
            hint,
            self.pick("Still trying...", "仍在重试..."),
            self.pick("C give up", "C 放弃"),
        ])
    }

    pub fn result_unknown(self) -> Screen {
        match self.lang {
            Lang::En => Screen::of(&[
                "RESULT UNKNOWN",
                "Check receipts on",
                "the phone before",
                "charging again",
                self.any_key(),
            ]),
            Lang::Zh => Screen::of(&[
                "结果未知",
                "请先在手机上查看",
                "交易记录再决定",
                "是否重新收款",
                self.any_key(),
            ]),
        }
    }

    /// The slip did not print: why, and the e-receipt as a QR code for the
    /// customer's phone when there is one.
    pub fn printer_problem(self, problem: PrinterProblem, link: Option<&str>) -> Screen {
        let what = self.pick(problem.short().0, problem.short().1);
        match link {
            Some(link) => Screen::with_qr(
                &[
                    self.pick("NO SLIP", "无签购单"),
                    what,
                    self.pick("Scan for", "扫码查看"),
                    self.pick("e-receipt", "电子签购单"),
                    self.pick("Any key", "按任意键"),
                ],
                link,
            ),
            None => Screen::of(&[
                self.pick("SLIP NOT PRINTED", "签购单未打印"),
                what,
                self.pick("It prints after", "故障排除后"),
                self.pick("the fix", "自动补打"),
                self.any_key(),
            ]),
        }
    }

    /// The terminal may not sell (frozen by the owner or a fraud rule).
    pub fn frozen(self, reason: &str) -> Screen {
        Screen::of(&[
            self.pick("TERMINAL FROZEN", "终端已冻结"),
            reason,
            self.pick("No sales possible", "暂停收款"),
            self.pick("Owner can unfreeze", "请联系店主解冻"),
        ])
    }

    /// Too many wrong operator PINs.
    pub fn locked(self) -> Screen {
        Screen::of(&[
            self.pick("LOCKED", "已锁定"),
            self.pick("Too many wrong PINs", "密码错误次数过多"),
            self.pick("Owner can unlock", "请店主在手机上解锁"),
            self.pick("No data is lost", "数据不会丢失"),
        ])
    }

    pub fn message(self, title: (&str, &str), line: (&str, &str)) -> Screen {
        Screen::of(&[
            self.pick(title.0, title.1),
            self.pick(line.0, line.1),
            "",
            self.any_key(),
        ])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn bar(online: bool, printer_ok: bool, paper_low: bool) -> StatusBar {
        StatusBar {
            clock: "09:41".into(),
            online,
            printer_ok,
            paper_low,
        }
    }

    /// Every screen a cashier can meet, in `lang`, with long values.
    pub(crate) fn all(lang: Lang) -> Vec<(&'static str, Screen)> {
        let s = Screens { lang };
        let big = Amount::from_minor(999_999_999).unwrap();
        let cashier = Cashier {
            no: "1024".into(),
            name: "王小明 Wang Xiaoming".into(),
        };
        vec![
            (
                "idle",
                s.idle("街角小店 Corner Shop", &bar(true, true, false), None, None),
            ),
            (
                "idle-printer",
                s.idle(
                    "Corner Shop",
                    &bar(false, false, false),
                    Some(PrinterProblem::PaperOut),
                    None,
                ),
            ),
            (
                "idle-paper-low",
                s.idle("Corner Shop", &bar(true, true, true), None, None),
            ),
            (
                "idle-cashier",
                s.idle("Corner Shop", &bar(true, true, false), None, Some("1024")),
            ),
            (
                "idle-setup",
                s.idle_setup("Corner Shop", &bar(true, true, false), "4821 9930"),
            ),
            (
                "idle-alert",
                s.idle_alert("Corner Shop", &bar(true, true, false), "T12 refunds>sales"),
            ),
            ("amount", s.amount_entry(Currency::CNY, "1250")),
            ("menu", s.menu()),
            (
                "self-test",
                s.self_test(&SelfTest {
                    online: true,
                    paired: true,
                    printer: Some(PrinterProblem::PaperOut),
                    paper_low: false,
                    devices: tallybox_core::protocol::DeviceHealth {
                        swipes: 120,
                        swipe_errors: 9,
                        taps: 40,
                        tap_errors: 1,
                        ..Default::default()
                    },
                }),
            ),
            ("cashier-menu", s.cashier_menu(&cashier)),
            ("cashier-no", s.cashier_no_entry("1024")),
            ("cashier-pin", s.cashier_pin_entry("1024", 6)),
            ("signed-on", s.signed_on(Some(&cashier))),
            ("signed-off", s.signed_on(None)),
            (
                "sign-on-refused",
                s.sign_on_refused(tallybox_core::reason::CASHIER_WRONG),
            ),
            ("not-paired", s.not_paired("Corner Shop", "T1")),
            ("pair-code", s.pair_code_entry("4821")),
            ("paired", s.paired(&Ok(()))),
            ("pairing-failed", s.paired(&Err("Wrong code".into()))),
            (
                "present-card",
                s.present_card(&s.sale_title(Currency::CNY, big), None),
            ),
            (
                "card-notice",
                s.present_card(
                    &s.sale_title(Currency::CNY, big),
                    Some(explain(tallybox_core::reason::READ_ERROR)),
                ),
            ),
            ("pay", s.pay(&s.sale_title(Currency::CNY, big), None)),
            (
                "pay-notice",
                s.pay(
                    &s.sale_title(Currency::CNY, big),
                    Some(explain(tallybox_core::reason::READ_ERROR)),
                ),
            ),
            ("cash", s.cash_entry(Currency::CNY, big, "1000000", false)),
            ("cash-short", s.cash_entry(Currency::CNY, big, "100", true)),
            ("cash-paid", s.cash_paid(Currency::CNY, big)),
            ("drawer-shut", s.drawer_shut(PrinterProblem::NotResponding)),
            ("cash-back", s.cash_back(Currency::CNY, big)),
            ("split-owed", s.split_owed(Currency::CNY, big, big)),
            ("split-paid", s.split_paid(Currency::CNY, big, big)),
            (
                "split-not-paid",
                s.split_not_paid(Currency::CNY, Some(ResponseCode::INSUFFICIENT_FUNDS), big),
            ),
            ("split-stopped", s.split_not_paid(Currency::CNY, None, big)),
            (
                "split-undo-refused",
                s.split_undo_refused(tallybox_core::reason::SUPERVISOR_PIN),
            ),
            (
                "drawer-refused",
                s.drawer_refused(tallybox_core::reason::SUPERVISOR_PIN),
            ),
            ("no-sale", s.no_sale_done()),
            ("count", s.count_entry(Currency::CNY, "1042500")),
            (
                "counted",
                s.drawer_counted(
                    Currency::CNY,
                    &DrawerCount {
                        expected: big,
                        counted: Amount::from_minor(999_999_000).unwrap(),
                    },
                ),
            ),
            ("pin", s.pin_entry(&s.sale_title(Currency::CNY, big), 6)),
            ("processing", s.processing(&s.sale_title(Currency::CNY, big))),
            ("approved", s.approved(Currency::CNY, big, "A1B2C3")),
            ("balance", s.balance(Currency::CNY, big)),
            ("declined", s.declined(ResponseCode::INSUFFICIENT_FUNDS, false)),
            (
                "not-charged",
                s.declined(tallybox_core::reason::NOT_CHARGED, true),
            ),
            ("hub-silent", s.hub_silent()),
            (
                "code-entry",
                s.code_entry(Currency::CNY, big, "287654321098765432123"),
            ),
            (
                "code-confirming",
                s.code_confirming(&s.sale_title(Currency::CNY, big), 55),
            ),
            (
                "code-cancelling",
                s.code_cancelling(&s.sale_title(Currency::CNY, big)),
            ),
            ("code-paid", s.code_paid(Currency::CNY, big, Provider::WechatPay)),
            ("code-back", s.code_back(Currency::CNY, big)),
            ("result-unknown", s.result_unknown()),
            (
                "printer-qr",
                s.printer_problem(
                    PrinterProblem::PaperOut,
                    Some("http://tallybox.local/r/ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                ),
            ),
            ("printer", s.printer_problem(PrinterProblem::CoverOpen, None)),
            ("frozen", s.frozen("Card testing")),
            ("locked", s.locked()),
            ("admin-menu", s.admin_menu()),
            ("settled", s.settled(7, true)),
            ("out-of-balance", s.settled(7, false)),
            ("supervisor-pin", s.supervisor_pin(s.pick("VOID", "撤销"), 4)),
            ("refund-amount", s.refund_amount(Currency::CNY, 42, "500")),
        ]
    }

    #[test]
    fn screens_fit_the_oled() {
        for lang in [Lang::En, Lang::Zh] {
            for (name, s) in all(lang) {
                let rows = if lang == Lang::Zh { 5 } else { ROWS };
                assert!(s.lines.len() <= rows, "{name}: {s:?}");
                let width = if s.qr.is_some() { QR_COLUMNS } else { COLUMNS };
                assert!(s.lines.iter().all(|l| columns(l) <= width), "{name}: {s:?}");
            }
        }
    }

    #[test]
    fn chinese_screens_say_it_in_chinese() {
        let zh = Screens { lang: Lang::Zh };
        assert!(zh
            .declined(ResponseCode::INSUFFICIENT_FUNDS, false)
            .text()
            .contains("余额不足"));
        assert!(zh
            .approved(Currency::CNY, Amount::from_minor(1250).unwrap(), "X")
            .text()
            .contains("交易成功"));
    }

    #[test]
    fn amount_shows_as_money_while_typing() {
        let s = Screens::default();
        assert!(s.amount_entry(Currency::CNY, "1250").text().contains("CNY 12.50"));
        assert!(s.amount_entry(Currency::CNY, "").text().contains("CNY 0.00"));
    }

    #[test]
    fn clipping_counts_chinese_as_two_columns() {
        assert_eq!(clip("一二三四五六七八九十十一", COLUMNS), "一二三四五六七八九十");
        assert_eq!(clip("abc", 2), "ab");
    }
}
