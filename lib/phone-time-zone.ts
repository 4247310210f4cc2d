/**
 * The time zone a phone number most likely rings in, so a campaign calls a contact within the
 * contact's own calling hours when nobody told us the contact's zone.
 *
 * NANP numbers (+1) are placed by area code; an area code that spans zones (western Kentucky, the
 * Florida panhandle, the Dakotas, …) gets the zone most of its subscribers live in. Every other
 * number gets its country's zone, the most populous one where a country has several (AU → Sydney,
 * BR → São Paulo, RU → Moscow, MX → Mexico City, ID → Jakarta). The area-code table follows the
 * per-prefix time-zone map of Google's libphonenumber, reduced to one zone per area code; the
 * country table follows the IANA zone.tab, with the dominant zone chosen for multi-zone countries.
 * Both are plain data: a lookup needs no I/O, so the api and the dialer's activities share it.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import metadata from 'libphonenumber-js/metadata.min.json';

/** NANP area code → zone. */
const NANP_ZONES: readonly (readonly [zone: string, areaCodes: string])[] = [
  [
    'America/New_York',
    `201 202 203 207 212 215 216 220 223 227 229 231 234 239 240 248 252 260 267 269 272 276 283 301
     302 304 305 313 315 317 321 324 326 329 330 332 336 339 347 351 352 363 364 380 386 401 404 407
     410 412 413 419 423 434 440 443 445 448 463 470 472 475 478 484 502 508 513 516 517 518 540 551
     561 567 570 571 574 582 585 586 603 606 607 609 610 614 616 617 631 640 645 646 656 667 678 680
     681 686 703 704 706 716 717 718 724 727 728 732 734 740 743 754 757 762 765 770 771 772 774 781
     786 802 803 804 810 812 813 814 821 826 828 835 838 839 843 845 848 854 856 857 859 860 862 863
     864 865 878 904 906 908 910 912 914 917 919 929 930 934 937 941 943 947 948 954 959 973 978 980
     984 989`,
  ],
  [
    'America/Chicago',
    `205 210 214 217 218 219 224 225 228 235 251 254 256 262 270 274 281 308 309 312 314 316 318 319
     320 325 327 331 334 337 346 353 361 402 405 409 414 417 430 432 447 464 469 479 501 504 507 512
     515 531 534 539 557 563 572 573 580 601 605 608 612 615 618 620 629 630 636 641 651 659 660 662
     682 689 701 708 712 713 715 726 730 731 737 763 769 773 779 785 806 815 816 817 830 832 847 850
     870 872 901 903 913 918 920 931 936 938 940 945 952 956 972 975 979 985`,
  ],
  [
    'America/Los_Angeles',
    `206 209 213 253 279 310 323 341 350 360 369 408 415 424 425 442 458 503 509 510 530 541 559 562
     564 619 626 628 650 657 661 669 702 707 714 725 738 747 760 775 805 818 820 831 840 858 909 916
     925 949 951 971`,
  ],
  [
    'America/Toronto',
    `226 249 263 289 343 354 365 367 382 416 418 437 438 450 468 514 519 548 579 581 613 647 683 705
     742 753 807 819 873 905 942`,
  ],
  ['America/Denver', '303 307 385 406 435 505 575 719 720 748 801 915 970 983'],
  ['America/Vancouver', '236 250 257 604 672 778'],
  ['America/Edmonton', '368 403 587 780 825'],
  ['America/Phoenix', '480 520 602 623 928'],
  ['America/Winnipeg', '204 431 584'],
  ['America/Halifax', '428 506 782 902'],
  ['America/Santo_Domingo', '809 829 849'],
  ['America/Boise', '208 986'],
  ['America/Regina', '306 474 639'],
  ['America/Jamaica', '658 876'],
  ['America/St_Johns', '709 879'],
  ['America/Puerto_Rico', '787 939'],
  ['America/Nassau', '242'],
  ['America/Barbados', '246'],
  ['America/Anguilla', '264'],
  ['America/Antigua', '268'],
  ['America/Tortola', '284'],
  ['America/St_Thomas', '340'],
  ['America/Cayman', '345'],
  ['Atlantic/Bermuda', '441'],
  ['America/Grenada', '473'],
  ['America/Grand_Turk', '649'],
  ['America/Montserrat', '664'],
  ['Pacific/Saipan', '670'],
  ['Pacific/Guam', '671'],
  ['Pacific/Pago_Pago', '684'],
  ['America/Lower_Princes', '721'],
  ['America/St_Lucia', '758'],
  ['America/Dominica', '767'],
  ['America/St_Vincent', '784'],
  ['Pacific/Honolulu', '808'],
  ['America/Whitehorse', '867'],
  ['America/Port_of_Spain', '868'],
  ['America/St_Kitts', '869'],
  ['America/Anchorage', '907'],
];

/** ISO 3166 region (as libphonenumber-js names them) → its only or most populous zone. */
const COUNTRY_ZONES = `
  AC=Atlantic/St_Helena AD=Europe/Andorra AE=Asia/Dubai AF=Asia/Kabul AG=America/Antigua
  AI=America/Anguilla AL=Europe/Tirane AM=Asia/Yerevan AO=Africa/Luanda
  AR=America/Argentina/Buenos_Aires AS=Pacific/Pago_Pago AT=Europe/Vienna AU=Australia/Sydney
  AW=America/Aruba AX=Europe/Mariehamn AZ=Asia/Baku BA=Europe/Sarajevo BB=America/Barbados
  BD=Asia/Dhaka BE=Europe/Brussels BF=Africa/Ouagadougou BG=Europe/Sofia BH=Asia/Bahrain
  BI=Africa/Bujumbura BJ=Africa/Porto-Novo BL=America/St_Barthelemy BM=Atlantic/Bermuda BN=Asia/Brunei
  BO=America/La_Paz BQ=America/Kralendijk BR=America/Sao_Paulo BS=America/Nassau BT=Asia/Thimphu
  BW=Africa/Gaborone BY=Europe/Minsk BZ=America/Belize CA=America/Toronto CC=Indian/Cocos
  CD=Africa/Kinshasa CF=Africa/Bangui CG=Africa/Brazzaville CH=Europe/Zurich CI=Africa/Abidjan
  CK=Pacific/Rarotonga CL=America/Santiago CM=Africa/Douala CN=Asia/Shanghai CO=America/Bogota
  CR=America/Costa_Rica CU=America/Havana CV=Atlantic/Cape_Verde CW=America/Curacao
  CX=Indian/Christmas CY=Asia/Nicosia CZ=Europe/Prague DE=Europe/Berlin DJ=Africa/Djibouti
  DK=Europe/Copenhagen DM=America/Dominica DO=America/Santo_Domingo DZ=Africa/Algiers
  EC=America/Guayaquil EE=Europe/Tallinn EG=Africa/Cairo EH=Africa/El_Aaiun ER=Africa/Asmara
  ES=Europe/Madrid ET=Africa/Addis_Ababa FI=Europe/Helsinki FJ=Pacific/Fiji FK=Atlantic/Stanley
  FM=Pacific/Chuuk FO=Atlantic/Faroe FR=Europe/Paris GA=Africa/Libreville GB=Europe/London
  GD=America/Grenada GE=Asia/Tbilisi GF=America/Cayenne GG=Europe/Guernsey GH=Africa/Accra
  GI=Europe/Gibraltar GL=America/Nuuk GM=Africa/Banjul GN=Africa/Conakry GP=America/Guadeloupe
  GQ=Africa/Malabo GR=Europe/Athens GT=America/Guatemala GU=Pacific/Guam GW=Africa/Bissau
  GY=America/Guyana HK=Asia/Hong_Kong HN=America/Tegucigalpa HR=Europe/Zagreb
  HT=America/Port-au-Prince HU=Europe/Budapest ID=Asia/Jakarta IE=Europe/Dublin IL=Asia/Jerusalem
  IM=Europe/Isle_of_Man IN=Asia/Kolkata IO=Indian/Chagos IQ=Asia/Baghdad IR=Asia/Tehran
  IS=Atlantic/Reykjavik IT=Europe/Rome JE=Europe/Jersey JM=America/Jamaica JO=Asia/Amman JP=Asia/Tokyo
  KE=Africa/Nairobi KG=Asia/Bishkek KH=Asia/Phnom_Penh KI=Pacific/Tarawa KM=Indian/Comoro
  KN=America/St_Kitts KP=Asia/Pyongyang KR=Asia/Seoul KW=Asia/Kuwait KY=America/Cayman KZ=Asia/Almaty
  LA=Asia/Vientiane LB=Asia/Beirut LC=America/St_Lucia LI=Europe/Vaduz LK=Asia/Colombo
  LR=Africa/Monrovia LS=Africa/Maseru LT=Europe/Vilnius LU=Europe/Luxembourg LV=Europe/Riga
  LY=Africa/Tripoli MA=Africa/Casablanca MC=Europe/Monaco MD=Europe/Chisinau ME=Europe/Podgorica
  MF=America/Marigot MG=Indian/Antananarivo MH=Pacific/Majuro MK=Europe/Skopje ML=Africa/Bamako
  MM=Asia/Yangon MN=Asia/Ulaanbaatar MO=Asia/Macau MP=Pacific/Saipan MQ=America/Martinique
  MR=Africa/Nouakchott MS=America/Montserrat MT=Europe/Malta MU=Indian/Mauritius MV=Indian/Maldives
  MW=Africa/Blantyre MX=America/Mexico_City MY=Asia/Kuala_Lumpur MZ=Africa/Maputo NA=Africa/Windhoek
  NC=Pacific/Noumea NE=Africa/Niamey NF=Pacific/Norfolk NG=Africa/Lagos NI=America/Managua
  NL=Europe/Amsterdam NO=Europe/Oslo NP=Asia/Kathmandu NR=Pacific/Nauru NU=Pacific/Niue
  NZ=Pacific/Auckland OM=Asia/Muscat PA=America/Panama PE=America/Lima PF=Pacific/Tahiti
  PG=Pacific/Port_Moresby PH=Asia/Manila PK=Asia/Karachi PL=Europe/Warsaw PM=America/Miquelon
  PR=America/Puerto_Rico PS=Asia/Hebron PT=Europe/Lisbon PW=Pacific/Palau PY=America/Asuncion
  QA=Asia/Qatar RE=Indian/Reunion RO=Europe/Bucharest RS=Europe/Belgrade RU=Europe/Moscow
  RW=Africa/Kigali SA=Asia/Riyadh SB=Pacific/Guadalcanal SC=Indian/Mahe SD=Africa/Khartoum
  SE=Europe/Stockholm SG=Asia/Singapore SH=Atlantic/St_Helena SI=Europe/Ljubljana
  SJ=Arctic/Longyearbyen SK=Europe/Bratislava SL=Africa/Freetown SM=Europe/San_Marino SN=Africa/Dakar
  SO=Africa/Mogadishu SR=America/Paramaribo SS=Africa/Juba ST=Africa/Sao_Tome SV=America/El_Salvador
  SX=America/Lower_Princes SY=Asia/Damascus SZ=Africa/Mbabane TA=Atlantic/St_Helena
  TC=America/Grand_Turk TD=Africa/Ndjamena TG=Africa/Lome TH=Asia/Bangkok TJ=Asia/Dushanbe
  TK=Pacific/Fakaofo TL=Asia/Dili TM=Asia/Ashgabat TN=Africa/Tunis TO=Pacific/Tongatapu
  TR=Europe/Istanbul TT=America/Port_of_Spain TV=Pacific/Funafuti TW=Asia/Taipei
  TZ=Africa/Dar_es_Salaam UA=Europe/Kyiv UG=Africa/Kampala US=America/New_York UY=America/Montevideo
  UZ=Asia/Tashkent VA=Europe/Vatican VC=America/St_Vincent VE=America/Caracas VG=America/Tortola
  VI=America/St_Thomas VN=Asia/Ho_Chi_Minh VU=Pacific/Efate WF=Pacific/Wallis WS=Pacific/Apia
  XK=Europe/Belgrade YE=Asia/Aden YT=Indian/Mayotte ZA=Africa/Johannesburg ZM=Africa/Lusaka
  ZW=Africa/Harare
`;

function parseAreaCodes(): Map<string, string> {
  const byAreaCode = new Map<string, string>();
  for (const [zone, areaCodes] of NANP_ZONES) {
    for (const areaCode of areaCodes.split(/\s+/)) if (areaCode) byAreaCode.set(areaCode, zone);
  }
  return byAreaCode;
}

function parseCountryZones(): Map<string, string> {
  const byCountry = new Map<string, string>();
  for (const entry of COUNTRY_ZONES.split(/\s+/)) {
    const [country, zone] = entry.split('=');
    if (country && zone) byCountry.set(country, zone);
  }
  return byCountry;
}

const AREA_CODE_ZONES = parseAreaCodes();
const PRIMARY_ZONES = parseCountryZones();

/** Calling code → the country that owns it (+1 → US, +7 → RU, +44 → GB), for numbers no country claims. */
function mainCountryOf(callingCode: string): string | undefined {
  const owners: Record<string, readonly string[] | undefined> = metadata.country_calling_codes;
  return owners[callingCode]?.[0];
}

/** The country's only or most populous zone, or null for a region we do not know. */
export function primaryTimeZoneOfCountry(country: string): string | null {
  return PRIMARY_ZONES.get(country.toUpperCase()) ?? null;
}

/**
 * `America/New_York` for +12125550100, `Europe/London` for +442079460000, null when the text is
 * not an E.164 number of a country (or is a non-geographic number such as +800 freephone).
 */
export function timeZoneForNumber(e164: string): string | null {
  if (!/^\+[1-9]\d{6,14}$/.test(e164)) return null;
  const parsed = parsePhoneNumberFromString(e164);
  if (!parsed) return null;
  const callingCode = parsed.countryCallingCode;
  const country = parsed.country ?? mainCountryOf(callingCode);
  if (callingCode === '1') {
    const byAreaCode = AREA_CODE_ZONES.get(parsed.nationalNumber.slice(0, 3));
    if (byAreaCode) return byAreaCode;
  }
  return country ? primaryTimeZoneOfCountry(country) : null;
}

/** Lower-cased zone name → its IANA spelling, for the names Intl lists and the ones we hand out. */
let knownZones: Map<string, string> | undefined;
function knownZoneSpellings(): Map<string, string> {
  if (!knownZones) {
    knownZones = new Map<string, string>([['utc', 'UTC']]);
    const names = [
      ...Intl.supportedValuesOf('timeZone'),
      ...PRIMARY_ZONES.values(),
      ...AREA_CODE_ZONES.values(),
    ];
    for (const name of names) knownZones.set(name.toLowerCase(), name);
  }
  return knownZones;
}

/**
 * An IANA time zone name as typed by a person ('america/chicago', 'Europe/Kyiv', 'UTC') in its
 * canonical spelling, or undefined when the runtime's time zone database does not know it. Offsets
 * ('+05:00') are refused: a contact's zone must follow daylight-saving changes.
 */
export function normalizeTimeZone(input: string): string | undefined {
  const name = input.trim();
  if (!name || name.length > 64 || !/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(name)) return undefined;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
  const known = knownZoneSpellings().get(name.toLowerCase());
  if (known) return known;
  return resolved.toLowerCase() === name.toLowerCase() ? resolved : name;
}
